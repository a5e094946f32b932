package cli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing/offline"
)

// offlineFiles is the working directory of an offline-activation test:
// the vendor's store flags and the client's files.
type offlineFiles struct {
	t         *testing.T
	storeArgs []string
	dir       string
	tenant    string
	product   string
	code      string
}

func (f *offlineFiles) path(name string) string { return filepath.Join(f.dir, name) }

// run runs vigil and checks its exit code; it returns stdout and stderr.
func (f *offlineFiles) run(want int, args ...string) (string, string) {
	f.t.Helper()
	code, out, errOut := vigil(f.t, args...)
	if code != want {
		f.t.Fatalf("vigil %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out, errOut
}

func (f *offlineFiles) vendor(args ...string) []string { return append(args, f.storeArgs...) }

func (f *offlineFiles) request(want int, seat string, extra ...string) (string, string) {
	f.t.Helper()
	args := append([]string{"license", "offline-request", "--server-key", f.path("server-key.json"), "--product", f.product,
		"--seat", seat, "--fingerprint", "fp-" + seat}, extra...)
	return f.run(want, args...)
}

// flip changes one byte of the ciphertext of an envelope file, keeping
// it valid JSON.
func (f *offlineFiles) flip(src, dst string) {
	f.t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		f.t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(b, &env); err != nil {
		f.t.Fatal(err)
	}
	var ct []byte
	if err := json.Unmarshal([]byte(`"`+env["ciphertext"].(string)+`"`), &ct); err != nil {
		f.t.Fatal(err)
	}
	ct[len(ct)/3] ^= 0x01
	env["ciphertext"] = ct
	out, _ := json.Marshal(env)
	if err := os.WriteFile(dst, out, 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func TestLicenseOfflineThroughFiles(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		dir := t.TempDir()
		storeArgs := []string{"--data", filepath.Join(dir, "data")}
		if dialect == store.Postgres {
			storeArgs = append(storeArgs, "--database", storetest.DSN(t, dialect))
			storeArgs = append(storeArgs, sealKeyFile(t)...)
		}
		f := &offlineFiles{t: t, storeArgs: storeArgs, dir: dir, product: "com.example.offline"}

		// Vendor: a tenant with two seats, and its server key file.
		var tn struct{ ID string }
		vigilJSON(t, &tn, f.vendor("tenants", "create", "--name", "Air-gapped Ltd", "--json")...)
		f.tenant = tn.ID
		f.run(0, f.vendor("products", "create", "--id", f.product, "--name", "Offline App")...)
		var ent struct {
			Code string `json:"activation_code"`
		}
		vigilJSON(t, &ent, f.vendor("entitlements", "create", "--tenant", f.tenant, "--product", f.product, "--seats", "2", "--lease", "720h", "--json")...)
		f.code = ent.Code
		var sk offline.ServerKey
		vigilJSON(t, &sk, f.vendor("license", "server-key", "--tenant", f.tenant, "--out", f.path("server-key.json"), "--json")...)
		if sk.TenantID != f.tenant || len(sk.KEMs) != 2 || sk.Signing.Alg != "Ed25519" {
			t.Fatalf("server key %+v", sk)
		}
		if _, err := offline.ReadServerKey(f.path("server-key.json")); err != nil {
			t.Fatalf("the written server key file: %v", err)
		}

		// Client: a request with the hybrid KEM.
		f.request(0, "host-1", "--code", f.code, "--kem", "mlkem768-x25519", "--key-out", f.path("client.key"), "--out", f.path("request.json"))
		if fi, err := os.Stat(f.path("client.key")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("client key: %v, mode %v; want 0600", err, fi.Mode())
		}

		// Vendor: serve it. Client: verify it.
		f.run(0, f.vendor("license", "offline-activate", "--in", f.path("request.json"), "--out", f.path("answer.json"))...)
		var lic offline.License
		vigilJSON(t, &lic, "license", "offline-verify", "--key", f.path("client.key"), "--server-key", f.path("server-key.json"),
			"--in", f.path("answer.json"), "--state", f.path("state.json"), "--json")
		if lic.SeatID != "host-1" || lic.TenantID != f.tenant || lic.Fingerprint != "fp-host-1" || time.Until(lic.LeaseExpiresAt) < 719*time.Hour {
			t.Errorf("license %+v", lic)
		}
		out, _ := f.run(0, "license", "offline-verify", "--key", f.path("client.key"), "--server-key", f.path("server-key.json"), "--in", f.path("answer.json"))
		if !strings.Contains(out, "license valid: activation "+lic.ActivationID) {
			t.Errorf("human output:\n%s", out)
		}

		// The same request again is a replay.
		_, errOut := f.run(1, f.vendor("license", "offline-activate", "--in", f.path("request.json"), "--out", f.path("again.json"))...)
		if !strings.Contains(errOut, "OFFLINE_REQUEST_REPLAYED") {
			t.Errorf("replay: %s", errOut)
		}

		// A tampered request is refused and takes no seat: the second seat
		// is still free for an untampered one, and then none is.
		f.request(0, "host-2", "--code", f.code, "--key-out", f.path("client2.key"), "--out", f.path("request2.json"))
		f.flip(f.path("request2.json"), f.path("tampered.json"))
		_, errOut = f.run(1, f.vendor("license", "offline-activate", "--in", f.path("tampered.json"), "--out", f.path("x.json"))...)
		if !strings.Contains(errOut, "OFFLINE_REQUEST_INVALID") || !strings.Contains(errOut, "does not open") {
			t.Errorf("tampered request: %s", errOut)
		}
		f.run(0, f.vendor("license", "offline-activate", "--in", f.path("request2.json"), "--out", f.path("answer2.json"))...)
		f.request(0, "host-3", "--code", f.code, "--key-out", f.path("client3.key"), "--out", f.path("request3.json"))
		_, errOut = f.run(1, f.vendor("license", "offline-activate", "--in", f.path("request3.json"), "--out", f.path("x.json"))...)
		if !strings.Contains(errOut, "NO_SEATS") {
			t.Errorf("third seat: %s", errOut)
		}

		// A tampered answer, another client's answer, and another
		// tenant's server key are refused.
		f.flip(f.path("answer.json"), f.path("tampered-answer.json"))
		verify := func(key, serverKey, in, state string) string {
			args := []string{"license", "offline-verify", "--key", key, "--server-key", serverKey, "--in", in}
			if state != "" {
				args = append(args, "--state", state)
			}
			_, errOut := f.run(1, args...)
			return errOut
		}
		if e := verify(f.path("client.key"), f.path("server-key.json"), f.path("tampered-answer.json"), ""); !strings.Contains(e, "tampered or wrong key") || !strings.Contains(e, "does not open") {
			t.Errorf("tampered answer: %s", e)
		}
		if e := verify(f.path("client.key"), f.path("server-key.json"), f.path("answer2.json"), ""); !strings.Contains(e, "tampered or wrong key") {
			t.Errorf("another client's answer: %s", e)
		}
		var tn2 struct{ ID string }
		vigilJSON(t, &tn2, f.vendor("tenants", "create", "--name", "Other", "--json")...)
		f.run(0, f.vendor("license", "server-key", "--tenant", tn2.ID, "--out", f.path("other-key.json"))...)
		if e := verify(f.path("client.key"), f.path("other-key.json"), f.path("answer.json"), ""); !strings.Contains(e, "signed with key") {
			t.Errorf("another tenant's server key: %s", e)
		}

		// The clock turned back: the state saw a day later than now.
		future, _ := json.Marshal(offline.State{MaxSeen: time.Now().Add(24 * time.Hour)})
		if err := os.WriteFile(f.path("future-state.json"), future, 0o600); err != nil {
			t.Fatal(err)
		}
		if e := verify(f.path("client.key"), f.path("server-key.json"), f.path("answer.json"), f.path("future-state.json")); !strings.Contains(e, "clock turned back") {
			t.Errorf("clock rollback: %s", e)
		}

		// Refresh and deactivate with the key that activated.
		f.request(0, "host-1", "--type", "refresh", "--key", f.path("client.key"), "--out", f.path("refresh.json"))
		f.run(0, f.vendor("license", "offline-activate", "--in", f.path("refresh.json"), "--out", f.path("refresh-answer.json"))...)
		var rlic offline.License
		vigilJSON(t, &rlic, "license", "offline-verify", "--key", f.path("client.key"), "--server-key", f.path("server-key.json"),
			"--in", f.path("refresh-answer.json"), "--state", f.path("state.json"), "--json")
		if rlic.ActivationID != lic.ActivationID || rlic.RequestID == lic.RequestID {
			t.Errorf("refreshed license %+v", rlic)
		}
		f.request(0, "host-1", "--type", "deactivate", "--key", f.path("client.key"), "--out", f.path("deactivate.json"))
		f.run(0, f.vendor("license", "offline-activate", "--in", f.path("deactivate.json"), "--out", f.path("receipt.json"))...)
		out, _ = f.run(0, "license", "offline-verify", "--key", f.path("client.key"), "--server-key", f.path("server-key.json"),
			"--in", f.path("receipt.json"), "--state", f.path("state.json"))
		if !strings.HasPrefix(out, "deactivated: activation "+lic.ActivationID) {
			t.Errorf("receipt:\n%s", out)
		}
		// The seat is free again: host-3's request (made before) now works.
		f.run(0, f.vendor("license", "offline-activate", "--in", f.path("request3.json"), "--out", f.path("answer3.json"))...)

		// Usage errors exit 2.
		f.request(2, "host-4", "--out", f.path("r.json"), "--key-out", f.path("k.key")) // no --code
		f.request(2, "host-4", "--code", f.code, "--kem", "p256", "--out", f.path("r.json"), "--key-out", f.path("k.key"))
		f.request(2, "host-4", "--type", "refresh", "--out", f.path("r.json")) // no --key
		f.run(2, "license", "offline-verify", "--key", f.path("missing.key"), "--server-key", f.path("server-key.json"), "--in", f.path("answer.json"))
		f.run(2, f.vendor("license", "server-key", "--tenant", "no-such-tenant")...)
	})
}

// TestLicenseOfflineThroughServe posts a request made with the CLI to a
// real `vigil serve` over HTTPS.
func TestLicenseOfflineThroughServe(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	f := &offlineFiles{t: t, storeArgs: []string{"--data", data}, dir: dir, product: "com.example.served"}
	var tn struct{ ID string }
	vigilJSON(t, &tn, f.vendor("tenants", "create", "--name", "Served", "--json")...)
	f.run(0, f.vendor("products", "create", "--id", f.product, "--name", "Served App")...)
	var ent struct {
		Code string `json:"activation_code"`
	}
	vigilJSON(t, &ent, f.vendor("entitlements", "create", "--tenant", tn.ID, "--product", f.product, "--seats", "1", "--json")...)
	f.run(0, f.vendor("license", "server-key", "--tenant", tn.ID, "--out", f.path("server-key.json"))...)

	base, _ := serveOn(t, "--data", data)
	ca := filepath.Join(data, "tls", httpx.CertFile)
	f.request(0, "host-1", "--code", ent.Code, "--key-out", f.path("client.key"), "--out", f.path("request.json"))
	f.run(0, "license", "offline-activate", "--server", base, "--ca-cert", ca, "--in", f.path("request.json"), "--out", f.path("answer.json"))
	out, _ := f.run(0, "license", "offline-verify", "--key", f.path("client.key"), "--server-key", f.path("server-key.json"), "--in", f.path("answer.json"))
	if !strings.Contains(out, "license valid") {
		t.Errorf("verify:\n%s", out)
	}
	_, errOut := f.run(1, "license", "offline-activate", "--server", base, "--ca-cert", ca, "--in", f.path("request.json"), "--out", f.path("again.json"))
	if !strings.Contains(errOut, "OFFLINE_REQUEST_REPLAYED") {
		t.Errorf("replay through the server: %s", errOut)
	}
	// Trust as vigil gate does: a pinned fingerprint reaches the server
	// (which refuses the replay), none gets the same hint as the gate.
	pemBytes, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	sum := sha256.Sum256(block.Bytes)
	_, errOut = f.run(1, "license", "offline-activate", "--server", base, "--fingerprint", hex.EncodeToString(sum[:]), "--in", f.path("request.json"), "--out", f.path("again.json"))
	if !strings.Contains(errOut, "OFFLINE_REQUEST_REPLAYED") {
		t.Errorf("with --fingerprint: %s", errOut)
	}
	_, errOut = f.run(3, "license", "offline-activate", "--server", base, "--in", f.path("request.json"), "--out", f.path("again.json"))
	if !strings.Contains(errOut, "--ca-cert or --fingerprint") {
		t.Errorf("an untrusted certificate without advice: %s", errOut)
	}
	f.flip(f.path("request.json"), f.path("tampered.json"))
	_, errOut = f.run(1, "license", "offline-activate", "--server", base, "--ca-cert", ca, "--in", f.path("tampered.json"), "--out", f.path("x.json"))
	if !strings.Contains(errOut, "OFFLINE_REQUEST_INVALID") {
		t.Errorf("tampered through the server: %s", errOut)
	}
}
