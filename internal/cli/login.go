package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/ci/gateclient"
)

// envConfigDir overrides where `vigil login` keeps what it saves (default:
// the user's configuration directory, os.UserConfigDir()/vigil).
const envConfigDir = "VIGIL_CONFIG_DIR"

// loginFile is the name of the file `vigil login` writes, mode 0600.
const loginFile = "login.json"

// savedLogin is what `vigil login` keeps: the server, how to trust it and
// the client's credentials. VIGIL_SERVER, VIGIL_CLIENT_ID and
// VIGIL_CLIENT_SECRET, and the commands' flags, override it.
type savedLogin struct {
	Server       string `json:"server"`
	CACert       string `json:"ca_cert,omitempty"` // a path, as given to --ca-cert
	Fingerprint  string `json:"fingerprint,omitempty"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// loginPath is where the login is kept.
func loginPath() (string, error) {
	dir := os.Getenv(envConfigDir)
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("no configuration directory (set $%s): %w", envConfigDir, err)
		}
		dir = filepath.Join(base, "vigil")
	}
	return filepath.Join(dir, loginFile), nil
}

// readLogin reads the saved login; none saved is (nil, nil). A file that
// others may read is refused: it holds a client secret.
func readLogin() (*savedLogin, error) {
	p, err := loginPath()
	if err != nil {
		return nil, nil // no place for one: none saved
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the saved login %s: %w", p, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, &usageError{fmt.Errorf("the saved login %s may be read by others (mode %v): chmod 600 it, or log in again", p, st.Mode().Perm())}
	}
	b, err := os.ReadFile(p) // #nosec G304 -- the user's own configuration file
	if err != nil {
		return nil, fmt.Errorf("read the saved login %s: %w", p, err)
	}
	var l savedLogin
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, &usageError{fmt.Errorf("the saved login %s is not valid JSON (log in again): %v", p, err)}
	}
	return &l, nil
}

// writeLogin saves the login atomically, mode 0600 in a 0700 directory.
func writeLogin(l savedLogin) (string, error) {
	p, err := loginPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("save the login: %w", err)
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+loginFile+".*")
	if err != nil {
		return "", fmt.Errorf("save the login: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename this finds nothing
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return "", fmt.Errorf("save the login: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return "", fmt.Errorf("save the login: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("save the login: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("save the login: %w", err)
	}
	return p, nil
}

func newLoginCmd(stdio Stdio) *cobra.Command {
	var (
		server, caCert, fingerprint string
		timeout                     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "login --server URL [--fingerprint FP | --ca-cert FILE]",
		Short: "Save a server and a client's credentials for the commands that talk to the server",
		Long: `Save where the Vigil server is, how to trust its certificate and the
credentials of an API client (from $` + envClientID + ` and $` + envClientSecret + `,
else read from standard input: the client ID on the first line, the secret
on the second), after checking them with the server's token endpoint.

The commands that call the server (projects, releases, bundles, tickets,
links…) then need no --server and no credentials in the environment; their
flags and $` + envServer + `, $` + envClientID + `, $` + envClientSecret + ` still override
what is saved. The file is ` + "`" + `$` + envConfigDir + `/login.json` + "`" + ` (default: the user's
configuration directory, vigil/login.json), mode 0600. vigil logout removes it.`,
		Example: `  VIGIL_CLIENT_ID=… VIGIL_CLIENT_SECRET=… vigil login --server https://vigil.example.com:8443 --fingerprint AB:CD:…
  printf '%s\n%s\n' "$ID" "$SECRET" | vigil login --server https://vigil.example.com:8443 --ca-cert cert.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if server == "" {
				return &usageError{errors.New("--server is required: the URL of the Vigil server")}
			}
			id, secret := os.Getenv(envClientID), os.Getenv(envClientSecret)
			if id == "" || secret == "" {
				var err error
				if id, secret, err = readCredentials(stdio); err != nil {
					return err
				}
			}
			if caCert != "" {
				abs, err := filepath.Abs(caCert)
				if err != nil {
					return &usageError{fmt.Errorf("--ca-cert: %w", err)}
				}
				caCert = abs
			}
			cfg := gateclient.Config{Server: server, ClientID: id, ClientSecret: secret, CACert: caCert, Fingerprint: fingerprint, Timeout: timeout}
			base, hc, err := gateclient.AuthorizedClient(cfg)
			if err != nil {
				return &usageError{err}
			}
			// A token proves the server, its certificate and the
			// credentials; the health check is a request that uses it.
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, base+"/api/v1/projects?limit=1", nil)
			if err != nil {
				return &usageError{err}
			}
			resp, err := hc.Do(req)
			if err != nil {
				return gateclient.TransportError(server, err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return &usageError{fmt.Errorf("the server %s refused the credentials of client %s", base, id)}
			}
			p, err := writeLogin(savedLogin{Server: base, CACert: caCert, Fingerprint: fingerprint, ClientID: id, ClientSecret: secret})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdio.Out, "logged in to %s as client %s; saved to %s\n", base, id, p)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&server, "server", os.Getenv(envServer), "URL of the Vigil server (default $"+envServer+")")
	fl.StringVar(&caCert, "ca-cert", "", "PEM file of the certificate(s) to trust for the server (its path is saved)")
	fl.StringVar(&fingerprint, "fingerprint", "", "SHA-256 fingerprint of the server's certificate, as vigil serve prints it")
	fl.DurationVar(&timeout, "timeout", 30*time.Second, "how long the check may take")
	return cmd
}

// readCredentials reads a client ID and secret, one per line, from
// standard input.
func readCredentials(stdio Stdio) (string, string, error) {
	b := make([]byte, 4<<10)
	n, _ := stdio.In.Read(b)
	lines := strings.Split(strings.TrimSpace(string(b[:n])), "\n")
	if len(lines) != 2 || strings.TrimSpace(lines[0]) == "" || strings.TrimSpace(lines[1]) == "" {
		return "", "", &usageError{fmt.Errorf("set %s and %s, or give the client ID and secret on standard input, one per line", envClientID, envClientSecret)}
	}
	return strings.TrimSpace(lines[0]), strings.TrimSpace(lines[1]), nil
}

func newLogoutCmd(stdio Stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget what vigil login saved",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			p, err := loginPath()
			if err != nil {
				return err
			}
			switch err := os.Remove(p); {
			case errors.Is(err, fs.ErrNotExist):
				fmt.Fprintln(stdio.Out, "not logged in")
			case err != nil:
				return fmt.Errorf("logout: %w", err)
			default:
				fmt.Fprintf(stdio.Out, "removed %s\n", p)
			}
			return nil
		},
	}
}
