package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/offline"
)

// newLicenseCmd returns `vigil license`: offline activation as files. The
// vendor side (server-key, offline-activate) runs where the store or the
// server is; the client side (offline-request, offline-verify) runs on
// the air-gapped machine.
func newLicenseCmd(stdio Stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "license",
		Short: "Offline activation for air-gapped machines, as files",
		Long: `Offline activation, for machines that never reach the licensing server:

  1. vendor:  vigil license server-key --tenant ID --out server-key.json
  2. client:  vigil license offline-request --server-key server-key.json --product P \
                --code CODE --seat S --key-out client.key --out request.json
  3. vendor:  vigil license offline-activate --in request.json --out answer.json
              (or POST request.json to /api/v1/offline/activate, or --server URL)
  4. client:  vigil license offline-verify --key client.key --server-key server-key.json \
                --in answer.json --state state.json

The request is sealed to the tenant's key with HPKE (RFC 9180); the answer
is a license signed with the tenant's Ed25519 key and sealed to the
client's key. Refresh and deactivate the same way with --type.

Exit codes: 0 done; 1 refused (an altered or foreign request or answer, a
wrong key, an expired lease, a clock turned back, or the server refused
the request); 2 bad usage or an unreadable file; 3 anything else.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newServerKeyCmd(stdio), newOfflineRequestCmd(stdio), newOfflineActivateCmd(stdio), newOfflineVerifyCmd(stdio))
	for _, c := range cmd.Commands() {
		c.Args = wrapArgs(c.Args)
	}
	return cmd
}

// refused prints why the offline flow refused and returns the error that
// exits 1 without printing again.
func refused(stdio Stdio, err error) error {
	fmt.Fprintf(stdio.Err, "vigil: %s\n", strings.TrimPrefix(err.Error(), "offline: "))
	return errGateFailed
}

// offlineErr maps an error of package offline: a missing file is a usage
// error, a refusal exits 1.
func offlineErr(stdio Stdio, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return &usageError{err}
	case errors.Is(err, offline.ErrMalformed), errors.Is(err, offline.ErrTampered), errors.Is(err, offline.ErrMismatch),
		errors.Is(err, offline.ErrLeaseExpired), errors.Is(err, offline.ErrClockRollback), errors.Is(err, offline.ErrStale):
		return refused(stdio, err)
	}
	return err
}

func newServerKeyCmd(stdio Stdio) *cobra.Command {
	var (
		t       target
		tenant  string
		outPath string
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "server-key --tenant ID [--out FILE] [--json]",
		Short: "Print (and write) the tenant's offline public keys: the file offline-request needs",
		Long: `Print the tenant's offline public keys: the HPKE keys requests are sealed to
(X25519, and the ML-KEM-768 + X25519 hybrid) and the Ed25519 key that signs
license files. They are made on first need. --out writes them as the file
that offline-request and offline-verify read; --json prints that file's JSON
(the same as GET /api/v1/tenants/{id}/offline-key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tenant == "" {
				return &usageError{errors.New("--tenant is required")}
			}
			out, err := t.run(cmd, stdio, op{
				scope: server.ScopeLicensingRead, method: "GET", path: "/api/v1/tenants/" + url.PathEscape(tenant) + "/offline-key",
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					sk, err := s.OfflineKey(ctx, tenant)
					if errors.Is(err, licensing.ErrNotFound) {
						return nil, &usageError{fmt.Errorf("--tenant %q: no such tenant", tenant)}
					}
					return sk, err
				}),
			})
			if err != nil {
				return err
			}
			var sk offline.ServerKey
			if err := decode(out, "server key", &sk); err != nil {
				return err
			}
			if outPath != "" {
				var b bytes.Buffer
				if err := json.Indent(&b, bytes.TrimSpace(out), "", "  "); err != nil {
					return err
				}
				b.WriteByte('\n')
				if err := os.WriteFile(outPath, b.Bytes(), 0o644); err != nil { // #nosec G306 -- public keys
					return &usageError{fmt.Errorf("--out: %w", err)}
				}
			}
			if asJSON {
				return printRaw(stdio.Out, out)
			}
			fmt.Fprintf(stdio.Out, "offline keys of tenant %s\n", sk.TenantID)
			for _, k := range sk.KEMs {
				fmt.Fprintf(stdio.Out, "  %-16s kem 0x%04x  %s\n", k.KEM, k.KEMID, k.KeyID)
			}
			fmt.Fprintf(stdio.Out, "  %-16s signing     %s\n", "ed25519", sk.Signing.KeyID)
			if outPath != "" {
				fmt.Fprintf(stdio.Out, "wrote %s\n", outPath)
			}
			return nil
		},
	}
	t.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "the tenant's ID (required)")
	cmd.Flags().StringVar(&outPath, "out", "", "write the server key file here")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server key file's JSON")
	return cmd
}

type offlineRequestFlags struct {
	serverKey, typ, product, code, activationID string
	seat, seatName, fingerprint, kem            string
	key, keyOut, out                            string
}

func newOfflineRequestCmd(stdio Stdio) *cobra.Command {
	var f offlineRequestFlags
	cmd := &cobra.Command{
		Use:   "offline-request --server-key FILE --product ID (--code CODE | --type refresh|deactivate --key FILE) --seat S --out FILE",
		Short: "Make a sealed offline request (activate, refresh, deactivate) on the client machine",
		Long: `Make a sealed offline request and the client key that opens its answer.

To activate, give the activation code; a new client key is written to
--key-out (mode 0600; --kem picks X25519, the default, or the
ML-KEM-768 + X25519 hybrid). To refresh or deactivate, give --type and the
key that activated (--key): the activation comes from it once offline-verify
has accepted the license (or give --activation-id). The key file is updated
(--key-out, default --key): offline-verify needs it to open the answer.`,
		Example: `  vigil license offline-request --server-key server-key.json --product com.example.app \
    --code ABCD-EFGH-JKLM-NPQR --seat host-1 --fingerprint "$(cat /etc/machine-id)" \
    --key-out client.key --out request.json
  vigil license offline-request --server-key server-key.json --type refresh --product com.example.app \
    --seat host-1 --key client.key --out refresh.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOfflineRequest(stdio, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.serverKey, "server-key", "", "the tenant's server key file (vigil license server-key --out)")
	fl.StringVar(&f.typ, "type", offline.Activate, "activate, refresh or deactivate")
	fl.StringVar(&f.product, "product", "", "the product's ID (required)")
	fl.StringVar(&f.code, "code", "", "the activation code (to activate)")
	fl.StringVar(&f.activationID, "activation-id", "", "the activation to refresh or deactivate (default: the key file's)")
	fl.StringVar(&f.seat, "seat", "", "this machine's seat ID (required)")
	fl.StringVar(&f.seatName, "seat-name", "", "a name for the seat")
	fl.StringVar(&f.fingerprint, "fingerprint", "", "this machine's fingerprint: binds the seat to it")
	fl.StringVar(&f.kem, "kem", offline.KEMX25519, "KEM of a new client key: x25519 or mlkem768-x25519")
	fl.StringVar(&f.key, "key", "", "an existing client key (required to refresh or deactivate)")
	fl.StringVar(&f.keyOut, "key-out", "", "where to write the client key (default --key)")
	fl.StringVar(&f.out, "out", "", "where to write the sealed request (required)")
	return cmd
}

func runOfflineRequest(stdio Stdio, f offlineRequestFlags) error {
	if f.keyOut == "" {
		f.keyOut = f.key
	}
	var problems []string
	switch {
	case f.serverKey == "":
		problems = append(problems, "--server-key is required")
	case f.product == "" || f.seat == "" || f.out == "":
		problems = append(problems, "--product, --seat and --out are required")
	case f.typ == offline.Activate && f.code == "":
		problems = append(problems, "--code is required to activate")
	case f.typ != offline.Activate && f.typ != offline.Refresh && f.typ != offline.Deactivate:
		problems = append(problems, fmt.Sprintf("--type %q: want activate, refresh or deactivate", f.typ))
	case f.typ != offline.Activate && f.key == "":
		problems = append(problems, "--key (the key that activated) is required to "+f.typ)
	case f.keyOut == "":
		problems = append(problems, "--key-out is required: the client key opens the answer")
	case f.kem != offline.KEMX25519 && f.kem != offline.KEMMLKEM768X25519:
		problems = append(problems, fmt.Sprintf("--kem %q: want x25519 or mlkem768-x25519", f.kem))
	}
	if len(problems) > 0 {
		return &usageError{errors.New(strings.Join(problems, "; "))}
	}
	sk, err := offline.ReadServerKey(f.serverKey)
	if err != nil {
		return &usageError{fmt.Errorf("--server-key: %w", err)}
	}
	var ck *offline.ClientKey
	if f.key != "" {
		if ck, err = offline.ReadClientKey(f.key); err != nil {
			return &usageError{fmt.Errorf("--key: %w", err)}
		}
	}
	env, ck, err := offline.NewRequest(sk, offline.Params{
		Type: f.typ, ProductID: f.product, ActivationCode: f.code, ActivationID: f.activationID,
		SeatID: f.seat, SeatName: f.seatName, Fingerprint: f.fingerprint, KEM: f.kem,
	}, ck)
	if err != nil {
		return &usageError{err}
	}
	if err := offline.WriteClientKey(f.keyOut, ck); err != nil {
		return err
	}
	if err := offline.WriteFile(f.out, env.Marshal()); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "wrote the %s request %s to %s (%s), the client key to %s\n", f.typ, ck.Pending.RequestID, f.out, ck.KEM, f.keyOut)
	return nil
}

func newOfflineActivateCmd(stdio Stdio) *cobra.Command {
	var (
		t       target
		in, out string
	)
	cmd := &cobra.Command{
		Use:   "offline-activate --in request.json --out answer.json [--server URL | --data DIR | --database URL]",
		Short: "Serve a sealed offline request on the vendor side: activate, refresh or deactivate, and write the sealed answer",
		Long: `Serve a sealed offline request and write the sealed answer (the license
file the client verifies). It posts the request to a running server
(--server URL, $VIGIL_SERVER or vigil login; trusted with --ca-cert or
--fingerprint for a self-signed certificate, as vigil gate is; no
credentials are needed: the sealed request carries the activation code or
the client's proof of possession), or serves it on the store (--data or
--database) as vigil serve would.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if in == "" || out == "" {
				return &usageError{errors.New("--in and --out are required")}
			}
			env, err := offline.ReadEnvelope(in, offline.PurposeRequest)
			if err != nil {
				return offlineErr(stdio, err)
			}
			answer, err := t.run(cmd, stdio, op{
				anonymous: true, method: "POST", path: "/api/v1/offline/activate", body: json.RawMessage(env.Marshal()),
				local: onLicensing(func(ctx context.Context, s *licensing.Service) (any, error) {
					ans, err := s.OfflineActivate(ctx, env)
					if le, ok := licensing.AsError(err); ok {
						return nil, refused(stdio, fmt.Errorf("refused: %s: %s", le.Code, le.Message))
					}
					if err != nil {
						return nil, err
					}
					return json.RawMessage(ans.Marshal()), nil
				}),
			})
			// The server's refusal of the request (not of the call: a
			// 5xx or a rate limit is trouble, exit 3) exits 1 as the
			// store's does.
			if ae, ok := errors.AsType[*apiError](err); ok && ae.Code != "" && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
				return refused(stdio, fmt.Errorf("refused: %s: %s", ae.Code, ae.Message))
			}
			if err != nil {
				return err
			}
			ans, err := offline.ParseEnvelope(answer, offline.PurposeAnswer)
			if err != nil {
				return fmt.Errorf("the answer: %w", err)
			}
			if err := offline.WriteFile(out, ans.Marshal()); err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "wrote the answer to %s\n", out)
			return nil
		},
	}
	t.register(cmd)
	cmd.Flags().StringVar(&in, "in", "", "the sealed request (required)")
	cmd.Flags().StringVar(&out, "out", "", "where to write the sealed answer (required)")
	return cmd
}

type offlineVerifyFlags struct {
	key, serverKey, in, state string
	asJSON                    bool
}

func newOfflineVerifyCmd(stdio Stdio) *cobra.Command {
	var f offlineVerifyFlags
	cmd := &cobra.Command{
		Use:   "offline-verify --key client.key --server-key FILE --in answer.json [--state state.json] [--json]",
		Short: "Open and verify an offline answer on the client machine, and print the license",
		Long: `Open the answer with the client key, verify the server's signature with the
server key file, check that it answers the key's last request (request ID,
tenant, product, seat, fingerprint), that the lease has not run out and that
the clock was not turned back: --state keeps the greatest time seen (the
server's last-seen times and this machine's clock) between runs. On success
the key file records the activation (for refresh and deactivate requests)
and the state file is updated. Exit 1 when the answer is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOfflineVerify(stdio, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.key, "key", "", "the client key that made the request (required)")
	fl.StringVar(&f.serverKey, "server-key", "", "the tenant's server key file (required)")
	fl.StringVar(&f.in, "in", "", "the sealed answer (required)")
	fl.StringVar(&f.state, "state", "", "the clock state file, made if missing (recommended)")
	fl.BoolVar(&f.asJSON, "json", false, "print the license as JSON")
	return cmd
}

func runOfflineVerify(stdio Stdio, f offlineVerifyFlags) error {
	if f.key == "" || f.serverKey == "" || f.in == "" {
		return &usageError{errors.New("--key, --server-key and --in are required")}
	}
	sk, err := offline.ReadServerKey(f.serverKey)
	if err != nil {
		return &usageError{fmt.Errorf("--server-key: %w", err)}
	}
	ck, err := offline.ReadClientKey(f.key)
	if err != nil {
		return &usageError{fmt.Errorf("--key: %w", err)}
	}
	var st *offline.State
	if f.state != "" {
		if st, err = offline.LoadState(f.state); err != nil {
			return &usageError{fmt.Errorf("--state: %w", err)}
		}
	}
	ans, err := offline.ReadEnvelope(f.in, offline.PurposeAnswer)
	if err != nil {
		return offlineErr(stdio, err)
	}
	lic, err := offline.Open(ans, ck, sk, st)
	if err != nil {
		return offlineErr(stdio, err)
	}
	if err := offline.WriteClientKey(f.key, ck); err != nil {
		return err
	}
	if st != nil {
		if err := st.Save(f.state); err != nil {
			return err
		}
	}
	if f.asJSON {
		return printJSON(stdio.Out, lic)
	}
	printLicense(stdio.Out, lic)
	return nil
}

func printLicense(w io.Writer, lic *offline.License) {
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if lic.Kind == offline.KindDeactivation {
		fmt.Fprintf(w, "deactivated: activation %s (seat %s) at %s\n", lic.ActivationID, lic.SeatID, rfc(lic.DeactivatedAt))
		return
	}
	fmt.Fprintf(w, "license valid: activation %s\n", lic.ActivationID)
	fmt.Fprintf(w, "  tenant %s, product %s, entitlement %s\n", lic.TenantID, lic.ProductID, lic.EntitlementID)
	fmt.Fprintf(w, "  seat %s", lic.SeatID)
	if lic.SeatName != "" {
		fmt.Fprintf(w, " (%s)", lic.SeatName)
	}
	if lic.Fingerprint != "" {
		fmt.Fprint(w, ", bound to this machine's fingerprint")
	}
	fmt.Fprintf(w, "\n  lease until %s (issued %s)\n", rfc(lic.LeaseExpiresAt), rfc(lic.IssuedAt))
	if !lic.EntitlementExpiresAt.IsZero() {
		fmt.Fprintf(w, "  entitlement expires %s\n", rfc(lic.EntitlementExpiresAt))
	}
	keys := make([]string, 0, len(lic.Features))
	for k := range lic.Features {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ft := lic.Features[k]
		if ft.Kind == "counted" {
			fmt.Fprintf(w, "  feature %s: counted, limit %d\n", k, ft.Limit)
		} else {
			fmt.Fprintf(w, "  feature %s\n", k)
		}
	}
}
