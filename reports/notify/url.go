package notify

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"

	"github.com/vigil-sec/vigil/internal/httpx"
)

// TLSMode is how a connection to the mail server is protected.
type TLSMode string

// The TLS modes.
const (
	// Implicit: TLS from the first byte (smtps://, port 465).
	Implicit TLSMode = "implicit"
	// StartTLS: STARTTLS is required; a server that does not offer it is
	// refused (smtp:// to any host but loopback).
	StartTLS TLSMode = "starttls"
	// Opportunistic: STARTTLS when the server offers it (smtp:// to a
	// loopback host).
	Opportunistic TLSMode = "opportunistic"
	// NoTLS: plain text (smtp://…?starttls=off), never with credentials
	// to a host other than loopback.
	NoTLS TLSMode = "off"
)

// Default ports.
const (
	DefaultSubmissionPort = 587 // smtp://
	DefaultSMTPSPort      = 465 // smtps://
)

// Settings is a mail server as --smtp-url names it.
type Settings struct {
	Host     string // a name or an address, without brackets
	Port     int
	TLS      TLSMode
	Username string // "" for no authentication
	Password string
	// From is the sender (From header and envelope sender), as
	// net/mail.Address; nil until set (?from= or --smtp-from).
	From *mail.Address
}

// ErrBadURL is wrapped by ParseURL's errors. Their text never holds the
// URL's password.
var ErrBadURL = errors.New("bad --smtp-url")

// ParseURL reads a mail server URL:
//
//	smtp://[USER:PASS@]HOST[:PORT][?from=ADDRESS][&starttls=off|required]
//	smtps://[USER:PASS@]HOST[:PORT][?from=ADDRESS]
//
// smtp:// requires STARTTLS unless HOST is loopback (then it is used when
// offered) or starttls=off says otherwise; starttls=off with credentials
// is refused but on loopback. The user and password are percent-encoded
// in the URL. Errors wrap ErrBadURL and never repeat the URL (it may hold
// a password): they name the part that is wrong.
func ParseURL(raw string) (Settings, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadURL, fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Parse's error quotes the URL, password and all.
		return Settings{}, bad("not a URL: want smtp://[USER:PASS@]HOST[:PORT]?from=ADDRESS or smtps://…")
	}
	var s Settings
	switch u.Scheme {
	case "smtp":
		s.Port = DefaultSubmissionPort
	case "smtps":
		s.Port, s.TLS = DefaultSMTPSPort, Implicit
	default:
		return Settings{}, bad("scheme %q: want smtp (STARTTLS, port 587) or smtps (implicit TLS, port 465)", u.Scheme)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return Settings{}, bad("want smtp://HOST[:PORT] with no path or fragment")
	}
	s.Host = u.Hostname()
	if s.Host == "" || strings.ContainsAny(s.Host, " /\\%") {
		return Settings{}, bad("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Settings{}, bad("port %q: want 1 to 65535", p)
		}
		s.Port = n
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
		if s.Username == "" {
			return Settings{}, bad("a password without a user name")
		}
		if strings.ContainsAny(s.Username+s.Password, "\x00\r\n") {
			return Settings{}, bad("the user name and password must not contain NUL or line breaks")
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Settings{}, bad("the query does not parse")
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return Settings{}, bad("%q given %d times", k, len(vs))
		}
		switch v := vs[0]; k {
		case "from":
			if s.From, err = ParseFrom(v); err != nil {
				return Settings{}, bad("from: %v", err)
			}
		case "starttls":
			switch {
			case s.TLS == Implicit:
				return Settings{}, bad("starttls: smtps:// is TLS from the start; use smtp:// for STARTTLS")
			case v == "off":
				s.TLS = NoTLS
			case v == "required":
				s.TLS = StartTLS
			default:
				return Settings{}, bad("starttls=%q: want off or required", v)
			}
		default:
			return Settings{}, bad("unknown parameter %q: want from or starttls", k)
		}
	}
	loopback := httpx.IsLoopbackHost(s.Host)
	if s.TLS == "" {
		s.TLS = StartTLS
		if loopback {
			s.TLS = Opportunistic
		}
	}
	if s.TLS == NoTLS && s.Username != "" && !loopback {
		return Settings{}, bad("starttls=off would send the password in clear to %s: use STARTTLS or smtps://", s.Host)
	}
	return s, nil
}

// ParseFrom reads a sender address: "reports@vendor.example" or
// "Vendor Reports <reports@vendor.example>", one address without line
// breaks.
func ParseFrom(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\x00\r\n") {
		return nil, errors.New("must not contain line breaks")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not one e-mail address", s)
	}
	if _, domain, _ := strings.Cut(a.Address, "@"); domain == "" {
		return nil, fmt.Errorf("%q is not one e-mail address", s)
	}
	return a, nil
}

// Addr is host:port.
func (s Settings) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// String is the server as a URL with its password redacted
// ("smtp://user:xxxxx@mail.example.com:587?from=…"): what logs and
// errors show.
func (s Settings) String() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	if s.TLS == Implicit {
		u.Scheme = "smtps"
	}
	switch {
	case s.Username != "" && s.Password != "":
		u.User = url.UserPassword(s.Username, "xxxxx")
	case s.Username != "":
		u.User = url.User(s.Username)
	}
	q := url.Values{}
	if s.From != nil {
		q.Set("from", s.From.Address)
	}
	if s.TLS == NoTLS {
		q.Set("starttls", "off")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Redact is raw, a mail server URL, with its password replaced: for the
// messages about a URL ParseURL refused. What does not parse is not shown.
func Redact(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}
