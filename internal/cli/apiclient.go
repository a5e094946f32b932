package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/vigil-sec/vigil/ci/gateclient"
)

// Environment variable holding the server URL of the commands that talk
// to a running server (--server overrides it).
const envServer = "VIGIL_SERVER"

// maxAPIAnswer bounds what is read of one answer of the server.
const maxAPIAnswer = 8 << 20

// serverFlags are the flags of the commands that call the Management API
// of a running server: where it is and how to trust its certificate. The
// credentials come from VIGIL_CLIENT_ID and VIGIL_CLIENT_SECRET, as for
// `vigil gate`.
type serverFlags struct {
	server      string
	caCert      string
	fingerprint string
	timeout     time.Duration
}

func (f *serverFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.server, "server", "", "URL of the Vigil server (default $"+envServer+")")
	fl.StringVar(&f.caCert, "ca-cert", "", "PEM file of the certificate(s) to trust for the server")
	fl.StringVar(&f.fingerprint, "fingerprint", "", "SHA-256 fingerprint of the server's certificate, as vigil serve prints it")
	fl.DurationVar(&f.timeout, "timeout", 30*time.Second, "how long one request may take")
}

// apiClient calls the Management API with a client_credentials token.
type apiClient struct {
	server string
	http   *http.Client
}

// endpoint is the server a command talks to, how to trust it, and where
// that came from (for messages).
type endpoint struct {
	server, caCert, fingerprint string
	from                        string // "--server", "$VIGIL_SERVER" or "vigil login (PATH)"
	saved                       *savedLogin
}

// resolve finds the server: --server, else $VIGIL_SERVER, else what vigil
// login saved ("" when none is). It checks the URL and the timeout (usage
// errors) but contacts nothing.
func (f *serverFlags) resolve() (endpoint, error) {
	saved, err := readLogin()
	if err != nil {
		return endpoint{}, err
	}
	e := endpoint{server: f.server, caCert: f.caCert, fingerprint: f.fingerprint, from: "--server", saved: saved}
	if e.server == "" {
		e.server, e.from = os.Getenv(envServer), "$"+envServer
	}
	if e.server == "" && saved != nil {
		// The saved server, with how to trust it unless flags say.
		e.server, e.from = saved.Server, "vigil login"
		if p, err := loginPath(); err == nil {
			e.from += " (" + p + ")"
		}
		if e.caCert == "" && e.fingerprint == "" {
			e.caCert, e.fingerprint = saved.CACert, saved.Fingerprint
		}
	}
	if e.server == "" {
		return endpoint{from: ""}, nil
	}
	u, err := url.Parse(e.server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return endpoint{}, &usageError{fmt.Errorf("%s %q is not an http(s) URL such as https://vigil.example.com:8443", e.from, e.server)}
	}
	if f.timeout <= 0 {
		return endpoint{}, &usageError{errors.New("--timeout must be positive")}
	}
	return e, nil
}

// client checks the flags and the credentials (usage errors) and makes
// the client; it does not contact the server.
func (f *serverFlags) client(scope string) (*apiClient, error) {
	e, err := f.resolve()
	if err != nil {
		return nil, err
	}
	if e.server == "" {
		return nil, &usageError{fmt.Errorf("--server (or $%s, or vigil login) is required: the URL of the Vigil server", envServer)}
	}
	return f.authorized(e, scope)
}

// authorized makes a client of the server e with the credentials of
// $VIGIL_CLIENT_ID and $VIGIL_CLIENT_SECRET, else the saved login's.
func (f *serverFlags) authorized(e endpoint, scope string) (*apiClient, error) {
	id, secret := os.Getenv(envClientID), os.Getenv(envClientSecret)
	if (id == "" || secret == "") && e.saved != nil {
		id, secret = e.saved.ClientID, e.saved.ClientSecret
	}
	if id == "" || secret == "" {
		return nil, &usageError{fmt.Errorf("set %s and %s to the credentials of a client with scope %s (vigil clients create --scopes %s), or vigil login",
			envClientID, envClientSecret, scope, scope)}
	}
	base, hc, err := gateclient.AuthorizedClient(gateclient.Config{
		Server: e.server, ClientID: id, ClientSecret: secret,
		CACert: e.caCert, Fingerprint: e.fingerprint, Timeout: f.timeout,
	})
	if err != nil {
		return nil, &usageError{err}
	}
	return &apiClient{server: base, http: hc}, nil
}

// anonymous makes a client of the server e without credentials, for the
// routes that take none (offline activation).
func (f *serverFlags) anonymous(e endpoint) (*apiClient, error) {
	tlsConf, err := gateclient.TLSConfig(e.caCert, e.fingerprint)
	if err != nil {
		return nil, &usageError{fmt.Errorf("--ca-cert/--fingerprint: %w", err)}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConf
	return &apiClient{server: strings.TrimRight(e.server, "/"), http: &http.Client{Transport: transport, Timeout: f.timeout}}, nil
}

// call makes the client (see client) and sends one request with it (see
// apiClient.call).
func (f *serverFlags) call(ctx context.Context, scope, method, path string, body any) ([]byte, error) {
	c, err := f.client(scope)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, method, path, body)
}

// apiError is an error answer of the server; it is exit 2 when the
// request was refused as bad input (400, 404, 409, 413, 415), else exit 3.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("the server answered %d", e.Status)
	}
	return fmt.Sprintf("the server answered %d %s: %s", e.Status, e.Code, e.Message)
}

// badInput reports whether the server refused what the user gave.
func (e *apiError) badInput() bool {
	switch e.Status {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return true
	}
	return false
}

// call sends a request with a JSON body (when body is not nil) and
// returns the answer's body when its status is 2xx; other answers are
// *apiError, wrapped in a usageError for bad input.
func (c *apiClient) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("vigil server %s refused the client credentials: %s %s", c.server, re.ErrorCode, re.ErrorDescription)
		}
		return nil, gateclient.TransportError(c.server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("read the answer of vigil server %s: %w", c.server, err)
	}
	if len(b) > maxAPIAnswer {
		return nil, fmt.Errorf("the answer of vigil server %s is larger than %d bytes", c.server, maxAPIAnswer)
	}
	if resp.StatusCode/100 == 2 {
		return b, nil
	}
	e := &apiError{Status: resp.StatusCode}
	var eb struct{ Code, Message string }
	if json.Unmarshal(b, &eb) == nil {
		e.Code, e.Message = eb.Code, eb.Message
	}
	if e.badInput() {
		return nil, &usageError{e}
	}
	return nil, e
}

// listAll reads every page of a list of the API at path (which may carry
// a query already), {"<items>": [...], "next_cursor": "..."}, and returns
// the items as the server sent them.
func (c *apiClient) listAll(ctx context.Context, path, items string) ([]json.RawMessage, error) {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	all := []json.RawMessage{}
	cursor := ""
	for {
		out, err := c.call(ctx, "GET", path+sep+"limit=1000&cursor="+url.QueryEscape(cursor), nil)
		if err != nil {
			return nil, err
		}
		var page map[string]json.RawMessage
		var list []json.RawMessage
		var next string
		err = json.Unmarshal(out, &page)
		if err == nil {
			err = json.Unmarshal(page[items], &list)
		}
		if err == nil {
			err = json.Unmarshal(page["next_cursor"], &next)
		}
		if err != nil {
			return nil, fmt.Errorf("the server's list of %s is not JSON: %w", items, err)
		}
		all = append(all, list...)
		if next == "" || next == cursor {
			return all, nil
		}
		cursor = next
	}
}

// printRaw prints the server's JSON answer as it came, on one line.
func printRaw(w io.Writer, b []byte) error {
	b = bytes.TrimRight(b, "\n")
	_, err := w.Write(append(b, '\n'))
	return err
}
