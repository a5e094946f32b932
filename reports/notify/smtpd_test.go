package notify_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// A real SMTP server on loopback (emersion/go-smtp) whose backend keeps
// what it receives: the envelope, the message as sent, and how the
// client authenticated, over what.

// received is one message the server accepted.
type received struct {
	From string
	To   []string
	Data []byte
	Msg  *mail.Message // Data parsed
	User string        // the authenticated user, "" for none
	TLS  bool          // whether the session was over TLS
}

// smtpd is the test's mail server.
type smtpd struct {
	t    *testing.T
	addr string // 127.0.0.1:port
	// users are the accounts AUTH PLAIN accepts; none: AUTH is not
	// offered.
	users map[string]string

	mu    sync.Mutex
	msgs  []received
	auths []string // every AUTH attempt, "user" or "user (refused)"
	// refuse, when it returns an error, refuses the message at DATA.
	refuse func(attempt int) error
	datas  int // DATA commands seen
}

// smtpdConfig says how the server listens.
type smtpdConfig struct {
	tls      *tls.Config // STARTTLS offered with it (or implicit TLS)
	implicit bool        // TLS from the first byte
	users    map[string]string
}

func startSMTPD(t *testing.T, cfg smtpdConfig) *smtpd {
	t.Helper()
	d := &smtpd{t: t, users: cfg.users}
	s := smtp.NewServer(d)
	s.Domain = "mail.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	s.MaxMessageBytes = 1 << 20
	s.MaxRecipients = 10
	s.AllowInsecureAuth = cfg.tls == nil // AUTH only over TLS when TLS is there
	var l net.Listener
	var err error
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.implicit {
		l = tls.NewListener(l, cfg.tls)
	} else {
		s.TLSConfig = cfg.tls
	}
	d.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return d
}

// messages returns what the server accepted so far.
func (d *smtpd) messages() []received {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]received(nil), d.msgs...)
}

// dataCount is how many DATA commands the server saw.
func (d *smtpd) dataCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.datas
}

func (d *smtpd) authAttempts() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.auths...)
}

func (d *smtpd) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{d: d, conn: c, tls: isTLS}, nil
}

type session struct {
	d    *smtpd
	conn *smtp.Conn
	tls  bool
	user string
	from string
	to   []string
}

func (s *session) AuthMechanisms() []string {
	if len(s.d.users) == 0 {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		s.d.mu.Lock()
		defer s.d.mu.Unlock()
		if want, ok := s.d.users[username]; !ok || want != password {
			s.d.auths = append(s.d.auths, username+" (refused)")
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "authentication failed"}
		}
		s.d.auths = append(s.d.auths, username)
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if len(s.d.users) > 0 && s.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	s.d.datas++
	if s.d.refuse != nil {
		if err := s.d.refuse(s.d.datas); err != nil {
			return err
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		s.d.t.Errorf("the server received a message that does not parse: %v\n%s", err, b)
		return errors.New("bad message")
	}
	s.d.msgs = append(s.d.msgs, received{From: s.from, To: s.to, Data: b, Msg: m, User: s.user, TLS: s.tls})
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost that is its
// own CA, and the pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mail.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}
