package notify_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/vigil-sec/vigil/reports/notify"
)

const (
	from     = "reports@vendor.example"
	password = "s3cret-pa55word" // #nosec G101 -- a test server's account
	token    = "Q2hlY2tUaGVUb2tlbk5ldmVyTGVha3NJbnRvVGhlSm9i"
)

// link is a LinkMail as the secure-links step would send it.
func link() notify.LinkMail {
	return notify.LinkMail{
		Product: "Acme Agent", Version: "1.4.0", TicketNumber: 42,
		URL:     "https://vigil.vendor.example/r/" + token,
		Expires: time.Date(2026, 12, 10, 6, 0, 0, 0, time.UTC), DownloadsLeft: 5,
	}
}

// queue is where the test's mailers queue their messages: what the job
// table would hold.
type queue struct {
	mu   sync.Mutex
	jobs map[string]string // key -> sealed
	keys []string          // in order, once each
}

func (q *queue) QueueMail(_ context.Context, key, sealed string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.jobs == nil {
		q.jobs = map[string]string{}
	}
	if _, ok := q.jobs[key]; !ok { // as the job queue: one job per key
		q.jobs[key] = sealed
		q.keys = append(q.keys, key)
	}
	return nil
}

// last is the last message queued.
func (q *queue) last(t *testing.T) (key, sealed string) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.keys) == 0 {
		t.Fatal("nothing queued")
	}
	k := q.keys[len(q.keys)-1]
	return k, q.jobs[k]
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

var sealKey = []byte("notify-test-seal-key-of-32-byte!")

// newMailer is a mailer of the server URL, with the CA pool (nil: none).
func newMailer(t *testing.T, rawURL string, roots *x509.CertPool) (*notify.Mailer, *queue) {
	t.Helper()
	s, err := notify.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := &queue{}
	m, err := notify.New(notify.Config{Server: s, SealKey: sealKey, Queue: q, RootCAs: roots, Timeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return m, q
}

// send queues the link's mail to the address and makes one delivery
// attempt, as the job would.
func send(t *testing.T, m *notify.Mailer, q *queue, to string, lm notify.LinkMail) error {
	t.Helper()
	if err := m.SendLink(t.Context(), to, lm); err != nil {
		t.Fatalf("SendLink: %v", err)
	}
	key, sealed := q.last(t)
	return m.Deliver(t.Context(), key, sealed, false)
}

// body is the decoded text of a received message.
func body(t *testing.T, r received) string {
	t.Helper()
	b, err := io.ReadAll(quotedprintable.NewReader(r.Msg.Body))
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

func subject(t *testing.T, r received) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(r.Msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject %q: %v", r.Msg.Header.Get("Subject"), err)
	}
	return s
}

func only(t *testing.T, d *smtpd) received {
	t.Helper()
	ms := d.messages()
	if len(ms) != 1 {
		t.Fatalf("the server received %d messages, want 1", len(ms))
	}
	return ms[0]
}

// TestSendLink: the mail reaches a real SMTP server with the right
// envelope and headers, as proper MIME, and its body holds the link.
func TestSendLink(t *testing.T) {
	t.Parallel()
	d := startSMTPD(t, smtpdConfig{})
	m, q := newMailer(t, "smtp://"+d.addr+"?from="+"Vendor+Reports+%3C"+from+"%3E", nil)
	if err := send(t, m, q, "Jane Doe <jane@customer.example>", link()); err != nil {
		t.Fatal(err)
	}
	r := only(t, d)
	if r.From != from || len(r.To) != 1 || r.To[0] != "jane@customer.example" || r.User != "" {
		t.Errorf("envelope from %q to %v (user %q)", r.From, r.To, r.User)
	}
	h := r.Msg.Header
	for k, want := range map[string]string{
		"To":                        "<jane@customer.example>",
		"From":                      `"Vendor Reports" <` + from + ">",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=UTF-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-generated",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if got, want := subject(t, r), "Security audit report: Acme Agent 1.4.0 (ticket 42)"; got != want {
		t.Errorf("Subject %q, want %q", got, want)
	}
	if date, err := h.Date(); err != nil || time.Since(date) > time.Minute || time.Since(date) < -time.Minute {
		t.Errorf("Date %q: %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@vendor.example>") || len(id) < 20 {
		t.Errorf("Message-ID %q", id)
	}
	text := body(t, r)
	for _, want := range []string{"ticket 42", "Acme Agent", "1.4.0", "\n" + link().URL + "\n", "10 December 2026 at 06:00 UTC", "allows 5 downloads."} {
		if !strings.Contains(text, want) {
			t.Errorf("body lacks %q:\n%s", want, text)
		}
	}
	// Quoted-printable keeps every line of the message short.
	for line := range strings.Lines(string(r.Data)) {
		if len(line) > 78+2 {
			t.Errorf("a line of %d bytes: %q", len(line), line)
		}
	}
}

// TestAuthOverTLS: with credentials, the mailer authenticates (AUTH
// PLAIN) after STARTTLS, or over implicit TLS, trusting the test's CA;
// a server that does not offer STARTTLS is refused when it is required.
func TestAuthOverTLS(t *testing.T) {
	t.Parallel()
	tlsCfg, roots := selfSigned(t)
	users := map[string]string{"reports": password}
	for _, tt := range []struct {
		name     string
		implicit bool
		url      string
	}{
		{"starttls", false, "smtp://reports:%s@%s?from=" + from + "&starttls=required"},
		{"starttls to localhost", false, "smtp://reports:%s@%s?from=" + from},
		{"implicit", true, "smtps://reports:%s@%s?from=" + from},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := startSMTPD(t, smtpdConfig{tls: tlsCfg, implicit: tt.implicit, users: users})
			m, q := newMailer(t, fmt.Sprintf(tt.url, password, d.addr), roots)
			if err := send(t, m, q, "jane@customer.example", link()); err != nil {
				t.Fatal(err)
			}
			r := only(t, d)
			if !r.TLS || r.User != "reports" {
				t.Errorf("received over TLS %v as %q, want TLS as reports", r.TLS, r.User)
			}
			if got := d.authAttempts(); len(got) != 1 || got[0] != "reports" {
				t.Errorf("AUTH attempts %v", got)
			}
			if !strings.Contains(body(t, r), link().URL) {
				t.Error("the link is not in the body")
			}
		})
	}

	t.Run("no STARTTLS offered", func(t *testing.T) {
		t.Parallel()
		d := startSMTPD(t, smtpdConfig{users: users})
		m, q := newMailer(t, "smtp://reports:"+password+"@"+d.addr+"?from="+from+"&starttls=required", roots)
		err := send(t, m, q, "jane@customer.example", link())
		if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Fatalf("Deliver = %v, want a refusal naming STARTTLS", err)
		}
		if len(d.messages()) != 0 || len(d.authAttempts()) != 0 {
			t.Errorf("the password went out in clear: %v", d.authAttempts())
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("the error holds the password: %v", err)
		}
	})

	t.Run("an unknown CA", func(t *testing.T) {
		t.Parallel()
		d := startSMTPD(t, smtpdConfig{tls: tlsCfg, implicit: true, users: users})
		m, q := newMailer(t, "smtps://reports:"+password+"@"+d.addr+"?from="+from, nil)
		if err := send(t, m, q, "jane@customer.example", link()); err == nil {
			t.Fatal("a certificate no CA of the mailer issued was accepted")
		}
		if len(d.authAttempts()) != 0 {
			t.Error("the password was sent to an unverified server")
		}
	})
}

// TestWrongPassword: the server refuses the credentials; the error says
// so, without the password, even when the server repeats it, and asks
// for another attempt (the administrator may fix the account).
func TestWrongPassword(t *testing.T) {
	t.Parallel()
	tlsCfg, roots := selfSigned(t)
	d := startSMTPD(t, smtpdConfig{tls: tlsCfg, implicit: true, users: map[string]string{"reports": "another-password"}})
	m, q := newMailer(t, "smtps://reports:"+password+"@"+d.addr+"?from="+from, roots)
	err := send(t, m, q, "jane@customer.example", link())
	if err == nil {
		t.Fatal("delivered with a wrong password")
	}
	t.Logf("error: %v", err)
	if got := d.authAttempts(); len(got) != 1 || got[0] != "reports (refused)" {
		t.Errorf("AUTH attempts %v", got)
	}
	for _, secret := range []string{password, token} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error holds a secret %q: %v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), "535") || !strings.Contains(err.Error(), "smtps://reports:xxxxx@") {
		t.Errorf("the error should give the server's answer and the redacted URL: %v", err)
	}
	if errors.Is(err, notify.ErrUndeliverable) {
		t.Error("an authentication failure is final; want it retried")
	}
}

// TestServerEchoesPassword: a server whose refusal quotes the password
// does not get it into the error.
func TestServerEchoesPassword(t *testing.T) {
	t.Parallel()
	d := startSMTPD(t, smtpdConfig{users: map[string]string{"reports": password}})
	d.refuse = func(int) error {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later, " + password}
	}
	m, q := newMailer(t, "smtp://reports:"+password+"@localhost:"+strings.Split(d.addr, ":")[1]+"?from="+from+"&starttls=off", nil)
	err := send(t, m, q, "jane@customer.example", link())
	if got := d.authAttempts(); len(got) != 1 || got[0] != "reports" || d.dataCount() != 1 {
		t.Fatalf("AUTH %v, DATA %d: want the message refused after a good AUTH", got, d.dataCount())
	}
	if err == nil || strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "try later, xxxxx") {
		t.Fatalf("Deliver = %v, want the server's answer with the password redacted", err)
	}
}

// TestHeaderInjection: line breaks in the product, the version or the
// recipient do not make headers or recipients of their own.
func TestHeaderInjection(t *testing.T) {
	t.Parallel()
	d := startSMTPD(t, smtpdConfig{})
	m, q := newMailer(t, "smtp://"+d.addr+"?from="+from, nil)
	for _, to := range []string{
		"jane@customer.example\r\nBcc: eve@evil.example",
		"jane@customer.example\nBcc: eve@evil.example",
		"jane@customer.example, eve@evil.example",
		"Jane\r\nBcc: eve@evil.example <jane@customer.example>",
	} {
		if err := m.SendLink(t.Context(), to, link()); !errors.Is(err, notify.ErrInvalid) {
			t.Errorf("SendLink to %q = %v, want ErrInvalid", to, err)
		}
	}
	lm := link()
	lm.Product = "Acme\r\nBcc: eve@evil.example\r\n\r\nInjected body"
	lm.Version = "1.0\nX-Evil: yes"
	if err := send(t, m, q, "jane@customer.example", lm); err != nil {
		t.Fatal(err)
	}
	r := only(t, d)
	if len(r.To) != 1 || r.To[0] != "jane@customer.example" {
		t.Errorf("recipients %v, want jane alone", r.To)
	}
	for _, k := range []string{"Bcc", "X-Evil"} {
		if v, ok := r.Msg.Header[k]; ok {
			t.Errorf("an injected header %s: %v", k, v)
		}
	}
	if got, want := subject(t, r), "Security audit report: Acme Bcc: eve@evil.example Injected body 1.0 X-Evil: yes (ticket 42)"; got != want {
		t.Errorf("Subject %q, want %q", got, want)
	}
	if text := body(t, r); !strings.Contains(text, "Product:  Acme Bcc: eve@evil.example Injected body\n") {
		t.Errorf("the body should carry the product on one line:\n%s", text)
	}
}

// TestRefusals: a temporary refusal asks for another attempt; a
// permanent one (5xx) is final; neither delivers.
func TestRefusals(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code      int
		permanent bool
	}{{451, false}, {421, false}, {550, true}, {554, true}} {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			t.Parallel()
			d := startSMTPD(t, smtpdConfig{})
			d.refuse = func(int) error {
				return &smtp.SMTPError{Code: tt.code, EnhancedCode: smtp.EnhancedCode{tt.code / 100, 0, 0}, Message: "not now"}
			}
			m, q := newMailer(t, "smtp://"+d.addr+"?from="+from, nil)
			err := send(t, m, q, "jane@customer.example", link())
			if err == nil {
				t.Fatal("delivered to a server that refuses")
			}
			if errors.Is(err, notify.ErrUndeliverable) != tt.permanent {
				t.Errorf("%d: ErrUndeliverable %v, want %v: %v", tt.code, !tt.permanent, tt.permanent, err)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("the error holds the token: %v", err)
			}
			if len(d.messages()) != 0 {
				t.Error("a refused message was kept")
			}
		})
	}
	t.Run("nobody listens", func(t *testing.T) {
		t.Parallel()
		m, q := newMailer(t, "smtp://127.0.0.1:1?from="+from, nil)
		if err := send(t, m, q, "jane@customer.example", link()); err == nil || errors.Is(err, notify.ErrUndeliverable) {
			t.Fatalf("Deliver = %v, want an error to retry", err)
		}
	})
}

// TestSealed: what is queued holds neither the link nor the recipient in
// clear; it opens only with its key and the same seal key; a link queued
// twice is one job.
func TestSealed(t *testing.T) {
	t.Parallel()
	d := startSMTPD(t, smtpdConfig{})
	m, q := newMailer(t, "smtp://"+d.addr+"?from="+from, nil)
	ctx := t.Context()
	if err := m.SendLink(ctx, "jane@customer.example", link()); err != nil {
		t.Fatal(err)
	}
	if err := m.SendLink(ctx, "jane@customer.example", link()); err != nil {
		t.Fatal(err)
	}
	if len(q.keys) != 1 {
		t.Fatalf("%d jobs for one link, want 1", len(q.keys))
	}
	key, sealed := q.last(t)
	for _, clear := range []string{token, "jane@customer", "vigil.vendor.example", "Acme"} {
		if strings.Contains(key+sealed, clear) {
			t.Errorf("the job holds %q in clear", clear)
		}
	}
	// Another link is another job.
	other := link()
	other.URL += "x"
	if err := m.SendLink(ctx, "jane@customer.example", other); err != nil {
		t.Fatal(err)
	}
	if len(q.keys) != 2 {
		t.Fatalf("%d jobs for two links, want 2", len(q.keys))
	}
	key2, sealed2 := q.last(t)
	// A sealed message does not open under another job's key, nor with
	// another seal key.
	if err := m.Deliver(ctx, key2, sealed, false); !errors.Is(err, notify.ErrUndeliverable) {
		t.Errorf("Deliver under another key = %v, want ErrUndeliverable", err)
	}
	s, _ := notify.ParseURL("smtp://" + d.addr + "?from=" + from)
	otherKey := []byte("another-seal-key-of-32-bytes!!!!")
	m2, err := notify.New(notify.Config{Server: s, SealKey: otherKey, Queue: q})
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Deliver(ctx, key, sealed, false); !errors.Is(err, notify.ErrUndeliverable) {
		t.Errorf("Deliver with another seal key = %v, want ErrUndeliverable", err)
	}
	if err := m.Deliver(ctx, key2, sealed2, false); err != nil {
		t.Fatal(err)
	}
	if r := only(t, d); !strings.Contains(body(t, r), other.URL) {
		t.Error("the second link's mail lacks its URL")
	}
}

func TestSendLinkRefusesBadMail(t *testing.T) {
	t.Parallel()
	m, _ := newMailer(t, "smtp://127.0.0.1:2525?from="+from, nil)
	for name, edit := range map[string]func(*notify.LinkMail){
		"no URL":      func(l *notify.LinkMail) { l.URL = "" },
		"ftp URL":     func(l *notify.LinkMail) { l.URL = "ftp://vendor.example/r/" + token },
		"no ticket":   func(l *notify.LinkMail) { l.TicketNumber = 0 },
		"no expiry":   func(l *notify.LinkMail) { l.Expires = time.Time{} },
		"used up":     func(l *notify.LinkMail) { l.DownloadsLeft = 0 },
		"no product":  func(l *notify.LinkMail) { l.Product = " " },
		"URL in user": func(l *notify.LinkMail) { l.URL = "https://" + token + "@vendor.example/r/x" },
	} {
		lm := link()
		edit(&lm)
		err := m.SendLink(t.Context(), "jane@customer.example", lm)
		if !errors.Is(err, notify.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		} else if strings.Contains(err.Error(), token) {
			t.Errorf("%s: the error holds the token: %v", name, err)
		}
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in       string
		host     string
		port     int
		tls      notify.TLSMode
		user     string
		from     string
		redacted string
	}{
		{"smtp://user:pass@mail.vendor.example:587?from=reports@vendor.example", "mail.vendor.example", 587, notify.StartTLS, "user", "reports@vendor.example",
			"smtp://user:xxxxx@mail.vendor.example:587?from=reports%40vendor.example"},
		{"smtp://mail.vendor.example?from=reports@vendor.example", "mail.vendor.example", 587, notify.StartTLS, "", "reports@vendor.example",
			"smtp://mail.vendor.example:587?from=reports%40vendor.example"},
		{"smtps://user:p%40ss%3Aw0rd@mail.vendor.example", "mail.vendor.example", 465, notify.Implicit, "user", "",
			"smtps://user:xxxxx@mail.vendor.example:465"},
		{"smtp://localhost:25", "localhost", 25, notify.Opportunistic, "", "", "smtp://localhost:25"},
		{"smtp://127.0.0.1:2525?starttls=required", "127.0.0.1", 2525, notify.StartTLS, "", "", "smtp://127.0.0.1:2525"},
		{"smtp://[::1]:25", "::1", 25, notify.Opportunistic, "", "", "smtp://[::1]:25"},
		{"smtp://relay.internal:25?starttls=off", "relay.internal", 25, notify.NoTLS, "", "", "smtp://relay.internal:25?starttls=off"},
		{"smtp://u:pw@localhost:25?starttls=off", "localhost", 25, notify.NoTLS, "u", "", "smtp://u:xxxxx@localhost:25?starttls=off"},
	} {
		s, err := notify.ParseURL(tt.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tt.in, err)
			continue
		}
		from := ""
		if s.From != nil {
			from = s.From.Address
		}
		if s.Host != tt.host || s.Port != tt.port || s.TLS != tt.tls || s.Username != tt.user || from != tt.from {
			t.Errorf("ParseURL(%q) = %+v", tt.in, s)
		}
		if got := s.String(); got != tt.redacted {
			t.Errorf("String() = %q, want %q", got, tt.redacted)
		}
	}
	if s, _ := notify.ParseURL("smtps://user:p%40ss%3Aw0rd@mail.vendor.example"); s.Password != "p@ss:w0rd" {
		t.Errorf("password %q, want it decoded", s.Password)
	}
	const secret = "hunter2-secret"
	for _, bad := range []string{
		"",
		"mail.vendor.example",
		"http://user:" + secret + "@mail.vendor.example",
		"smtp://user:" + secret + "@mail.vendor.example:99999",
		"smtp://user:" + secret + "@mail.vendor.example/path",
		"smtp://user:" + secret + "%zz@mail.vendor.example",
		"smtp://user:" + secret + "@mail.vendor.example?starttls=off",
		"smtp://user:" + secret + "@mail.vendor.example?starttls=maybe",
		"smtps://user:" + secret + "@mail.vendor.example?starttls=required",
		"smtp://user:" + secret + "@mail.vendor.example?form=x@y.example",
		"smtp://user:" + secret + "@mail.vendor.example?from=not-an-address",
		"smtp://user:" + secret + "@mail.vendor.example?from=a@b.example&from=c@d.example",
		"smtp://:" + secret + "@mail.vendor.example",
		"smtp://user:" + secret + "@?from=a@b.example",
	} {
		_, err := notify.ParseURL(bad)
		if !errors.Is(err, notify.ErrBadURL) {
			t.Errorf("ParseURL(%q) = %v, want ErrBadURL", bad, err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("ParseURL(%q): the error holds the password: %v", bad, err)
		}
	}
	if got := notify.Redact("smtp://user:" + secret + "@mail.vendor.example"); strings.Contains(got, secret) {
		t.Errorf("Redact = %q", got)
	}
}

func TestFromRequired(t *testing.T) {
	t.Parallel()
	s, err := notify.ParseURL("smtp://localhost:25")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notify.New(notify.Config{Server: s, SealKey: sealKey, Queue: &queue{}}); err == nil || !strings.Contains(err.Error(), "--smtp-from") {
		t.Errorf("New without a sender = %v, want an error naming --smtp-from", err)
	}
	if s.From, err = notify.ParseFrom("Reports <" + from + ">"); err != nil {
		t.Fatal(err)
	}
	if _, err := notify.New(notify.Config{Server: s, SealKey: sealKey, Queue: &queue{}}); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"", "x", "a@b.example\r\nBcc: e@evil.example", "a@b.example, c@d.example"} {
		if _, err := notify.ParseFrom(bad); err == nil {
			t.Errorf("ParseFrom(%q) accepted", bad)
		}
	}
}
