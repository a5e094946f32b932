package cli_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/licensing/client"
	"github.com/vigil-sec/vigil/licensing/offline"
)

// testOfflineFiles is offline activation as an air-gapped customer runs
// it: the server key, the sealed request and the license travel as files
// between the application (the client package, never online) and a
// machine that posts the request to the real server over HTTPS.
func testOfflineFiles(t *testing.T, ctx context.Context, env *licenseEnv) {
	tenant, product, code := env.entitlement("--seats", "1", "--lease", "720h", "--feature", "export")
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }

	// The vendor hands out the tenant's server key as a file.
	code0, _, stderr := vigil(t, append([]string{"license", "server-key", "--tenant", tenant, "--out", file("server-key.json")}, env.storeArgs...)...)
	if code0 != 0 {
		t.Fatalf("license server-key: exit %d: %s", code0, stderr)
	}
	sk, err := offline.ReadServerKey(file("server-key.json"))
	if err != nil {
		t.Fatal(err)
	}

	// The application (offline) writes its request and keeps its key.
	app := env.client(tenant, product, nil, nil, func(c *client.Config) { c.Fingerprint = "machine-42" })
	req, key, err := app.OfflineRequest(sk, offline.Params{ActivationCode: code, SeatID: "airgap-1", KEM: offline.KEMMLKEM768X25519}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := offline.WriteClientKey(file("client.key"), key); err != nil {
		t.Fatal(err)
	}
	if err := offline.WriteFile(file("request.json"), req.Marshal()); err != nil {
		t.Fatal(err)
	}

	// A connected machine posts the request file and writes the answer.
	post := func(in, out string) error {
		env1, err := offline.ReadEnvelope(in, offline.PurposeRequest)
		if err != nil {
			return err
		}
		ans, err := env.client(tenant, product, nil, nil).SubmitOffline(ctx, env1)
		if err != nil {
			return err
		}
		return offline.WriteFile(out, ans.Marshal())
	}
	if err := post(file("request.json"), file("answer.json")); err != nil {
		t.Fatalf("submit the offline request: %v", err)
	}

	// The application opens and verifies the license.
	open := func(path string, st *offline.State) (*offline.License, error) {
		ans, err := offline.ReadEnvelope(path, offline.PurposeAnswer)
		if err != nil {
			return nil, err
		}
		k, err := offline.ReadClientKey(file("client.key"))
		if err != nil {
			return nil, err
		}
		return app.OpenOffline(ans, k, sk, st)
	}
	st := &offline.State{}
	lic, err := open(file("answer.json"), st)
	if err != nil {
		t.Fatalf("open the license: %v", err)
	}
	if lic.Kind != offline.KindLicense || lic.TenantID != tenant || lic.ProductID != product || lic.SeatID != "airgap-1" ||
		lic.Fingerprint != "machine-42" || lic.Features["export"].Kind != "boolean" || !lic.LeaseExpiresAt.After(time.Now().Add(700*time.Hour)) {
		t.Fatalf("license = %+v", lic)
	}
	// The offline seat is a seat: an online activation finds none left.
	if _, err := env.client(tenant, product, nil, nil).Activate(ctx, code, "online-1", nil); apiCode(err) != client.CodeNoSeats {
		t.Errorf("online activation beside the offline seat: %v, want %s", err, client.CodeNoSeats)
	}

	// The same request again is refused; a tampered request is refused
	// and takes nothing.
	if err := post(file("request.json"), file("again.json")); apiCode(err) != client.CodeOfflineReplayed {
		t.Errorf("replayed request: %v, want %s", err, client.CodeOfflineReplayed)
	}
	b, _ := os.ReadFile(file("request.json"))
	tampered, _ := offline.ParseEnvelope(b, offline.PurposeRequest)
	tampered.Ciphertext[len(tampered.Ciphertext)/2] ^= 1
	if _, err := app.SubmitOffline(ctx, tampered); apiCode(err) == "" {
		t.Errorf("tampered request: %v, want a refusal", err)
	}

	// A tampered license file is refused.
	ab, _ := os.ReadFile(file("answer.json"))
	bad, _ := offline.ParseEnvelope(ab, offline.PurposeAnswer)
	bad.Ciphertext[0] ^= 0x80
	if err := offline.WriteFile(file("bad.json"), bad.Marshal()); err != nil {
		t.Fatal(err)
	}
	if _, err := open(file("bad.json"), &offline.State{}); err == nil {
		t.Error("a tampered license opened")
	}

	// A clock turned back: the state has seen a later time than now.
	if _, err := open(file("answer.json"), &offline.State{MaxSeen: time.Now().Add(2 * time.Hour)}); !errors.Is(err, offline.ErrClockRollback) {
		t.Errorf("clock turned back: %v, want ErrClockRollback", err)
	}

	// Offline deactivation with the same key frees the seat.
	deact, key, err := app.OfflineRequest(sk, offline.Params{Type: offline.Deactivate, SeatID: "airgap-1", ActivationID: lic.ActivationID}, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := offline.WriteClientKey(file("client.key"), key); err != nil { // it awaits this request's answer now
		t.Fatal(err)
	}
	if err := offline.WriteFile(file("deactivate.json"), deact.Marshal()); err != nil {
		t.Fatal(err)
	}
	if err := post(file("deactivate.json"), file("receipt.json")); err != nil {
		t.Fatalf("submit the deactivation: %v", err)
	}
	receipt, err := open(file("receipt.json"), st)
	if err != nil || receipt.Kind != offline.KindDeactivation {
		t.Fatalf("deactivation receipt: %+v, %v", receipt, err)
	}
	if _, err := env.client(tenant, product, nil, nil).Activate(ctx, code, "online-1", nil); err != nil {
		t.Errorf("online activation after the offline deactivation: %v", err)
	}
}
