package notify

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/vigil-sec/vigil/internal/seal"
)

// LinkMail is what the mail of a secure link says.
type LinkMail struct {
	// Product and Version name the release the report is of: the
	// product's name as people know it, and the release's version.
	Product string `json:"product"`
	Version string `json:"version"`
	// TicketNumber is the ticket the link answers.
	TicketNumber int64 `json:"ticket_number"`
	// URL is the link: PUBLIC_URL/r/{token}. It is a secret: it is sealed
	// while queued and never logged.
	URL string `json:"url"`
	// Expires is when the link stops working; DownloadsLeft how many
	// downloads it still allows.
	Expires       time.Time `json:"expires"`
	DownloadsLeft int       `json:"downloads_left"`
}

// Queue holds the sealed messages until they are sent: a job per message,
// retried with backoff (internal/jobs: Client.QueueMail). A message
// queued again under the same key while its job waits, runs or has
// completed is queued once.
type Queue interface {
	QueueMail(ctx context.Context, key, sealed string) error
}

// History records what became of a link's mail in its ticket's history
// (reports.TicketService.RecordMail): failure is "" when the mail server
// accepted it, else why it failed for good.
type History interface {
	RecordMail(ctx context.Context, ticketNumber int64, to, failure string) error
}

// Dialer connects to host:port; the server's is its outbound policy
// (httpx.OutboundPolicy.DialContext).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// DefaultTimeout bounds connecting and each SMTP command.
const DefaultTimeout = 30 * time.Second

// Config configures a Mailer. Server (with From), SealKey and Queue are
// required.
type Config struct {
	Server Settings
	// SealKey is the installation's seal key: the queued messages are
	// sealed under a key derived from it, so every process that sends
	// needs the same.
	SealKey []byte
	Queue   Queue
	// History records the outcome in the ticket's history; nil records
	// nothing.
	History History
	// Dial connects to the mail server; nil means a plain net.Dialer.
	// The server passes its outbound policy's.
	Dial Dialer
	// RootCAs verify the mail server's certificate; nil means the
	// system's.
	RootCAs *x509.CertPool
	// Timeout bounds connecting and each command; 0 means DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger
	// Now is the clock (the messages' Date); nil means time.Now.
	Now func() time.Time
}

// Mailer queues and sends the mails of secure links. It is safe for
// concurrent use.
type Mailer struct {
	cfg    Config
	sealer *seal.Sealer
	macKey []byte
	log    *slog.Logger
	now    func() time.Time
}

// HKDF labels of the keys derived from the seal key.
const (
	infoSeal = "vigil/seal-key/report-link-mail"     // #nosec G101 -- an HKDF label, not a secret
	infoMAC  = "vigil/seal-key/report-link-mail-key" // #nosec G101 -- an HKDF label, not a secret
)

// New makes a Mailer.
func New(cfg Config) (*Mailer, error) {
	switch {
	case cfg.Server.Host == "":
		return nil, errors.New("notify: Config.Server is required (ParseURL)")
	case cfg.Server.From == nil:
		return nil, fmt.Errorf("notify: %s: no sender: give ?from=ADDRESS in the URL or --smtp-from", cfg.Server)
	case cfg.Queue == nil:
		return nil, errors.New("notify: Config.Queue is required")
	case len(cfg.SealKey) != seal.KeySize:
		return nil, fmt.Errorf("notify: seal key is %d bytes, want %d", len(cfg.SealKey), seal.KeySize)
	}
	s, err := seal.Derive(cfg.SealKey, infoSeal)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	mac, err := hkdf.Key(sha256.New, cfg.SealKey, nil, infoMAC, 32)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	m := &Mailer{cfg: cfg, sealer: s, macKey: mac, log: cfg.Logger, now: cfg.Now}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.cfg.Timeout <= 0 {
		m.cfg.Timeout = DefaultTimeout
	}
	return m, nil
}

// Server is the mail server the Mailer sends through (String redacts it).
func (m *Mailer) Server() Settings { return m.cfg.Server }

// queued is a message as it is sealed into its job: everything the mail
// says, fixed when it was queued, so that every attempt sends the same
// message (the same Message-ID and Date).
type queued struct {
	To        string    `json:"to"`
	Mail      LinkMail  `json:"mail"`
	MessageID string    `json:"message_id"`
	Date      time.Time `json:"date"`
}

// ErrInvalid is wrapped by SendLink's refusals of its input.
var ErrInvalid = errors.New("invalid link mail")

// SendLink queues the mail of a secure link to one address, and returns
// once it is queued: the queue sends it (Deliver), retrying with backoff,
// so a slow or failing mail server never holds up or fails the caller.
// The same link queued again for the same address is sent once. Errors
// wrap ErrInvalid for a bad address or mail (their text holds no URL),
// or are the queue's.
func (m *Mailer) SendLink(ctx context.Context, to string, lm LinkMail) error {
	addr, err := checkRecipient(to)
	if err != nil {
		return err
	}
	if err := lm.check(); err != nil {
		return err
	}
	q := queued{To: addr, Mail: lm, MessageID: m.messageID(), Date: m.now().UTC().Truncate(time.Second)}
	plain, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	key := m.key(addr, lm.URL)
	sealed := m.sealer.Seal(plain, aad(key))
	if err := m.cfg.Queue.QueueMail(ctx, key, sealed); err != nil {
		return fmt.Errorf("notify: queue the link's mail for ticket %d: %w", lm.TicketNumber, err)
	}
	m.log.InfoContext(ctx, "link mail queued", slog.Int64("ticket", lm.TicketNumber), slog.String("to", addr), slog.String("key", key))
	return nil
}

// key names a (recipient, link) pair without revealing the link: an HMAC
// under a key derived from the seal key.
func (m *Mailer) key(to, link string) string {
	h := hmac.New(sha256.New, m.macKey)
	h.Write([]byte(to))
	h.Write([]byte{0})
	h.Write([]byte(link))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// aad binds a sealed message to its job's key.
func aad(key string) []byte { return []byte("vigil report link mail " + key) }

// messageID is a new Message-ID (without the angle brackets): random, at
// the sender's domain.
func (m *Mailer) messageID() string {
	b := make([]byte, 18)
	rand.Read(b)
	_, domain, _ := strings.Cut(m.cfg.Server.From.Address, "@")
	return base64.RawURLEncoding.EncodeToString(b) + "@" + domain
}

// checkRecipient checks the one address a mail goes to: what
// reports.CheckContact accepts.
func checkRecipient(to string) (string, error) {
	if strings.ContainsAny(to, "\x00\r\n") {
		return "", fmt.Errorf("%w: the recipient must not contain line breaks", ErrInvalid)
	}
	a, err := mail.ParseAddress(strings.TrimSpace(to))
	if err != nil || len(a.Address) > 254 || strings.ContainsAny(a.Address, " \t<>,;\"\\[") {
		return "", fmt.Errorf("%w: the recipient is not one plain e-mail address", ErrInvalid)
	}
	if local, domain, ok := strings.Cut(a.Address, "@"); !ok || local == "" || domain == "" {
		return "", fmt.Errorf("%w: the recipient is not one plain e-mail address", ErrInvalid)
	}
	return a.Address, nil
}

// Limits of what a mail says.
const (
	maxName    = 200
	maxURL     = 2048
	maxVersion = 100
)

func (lm LinkMail) check() error {
	u, err := url.Parse(lm.URL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(lm.URL) > maxURL:
		// The URL holds the token: never quote it.
		return fmt.Errorf("%w: the link is not an http(s) URL of at most %d bytes", ErrInvalid, maxURL)
	case lm.TicketNumber <= 0:
		return fmt.Errorf("%w: ticket number %d", ErrInvalid, lm.TicketNumber)
	case lm.Expires.IsZero():
		return fmt.Errorf("%w: the link's expiry is required", ErrInvalid)
	case lm.DownloadsLeft < 1:
		return fmt.Errorf("%w: a link with %d downloads left is not worth mailing", ErrInvalid, lm.DownloadsLeft)
	case strings.TrimSpace(lm.Product) == "" || strings.TrimSpace(lm.Version) == "":
		return fmt.Errorf("%w: the product and the version are required", ErrInvalid)
	}
	return nil
}

// ErrUndeliverable is wrapped by Deliver's errors that no retry can mend:
// a message that does not open (another seal key, an altered job) or that
// the mail server refused for good (a 5xx reply).
var ErrUndeliverable = errors.New("undeliverable")

// Deliver sends a queued message: the queue's job calls it with the key
// and sealed value SendLink queued, and whether this is its last attempt.
// An error asks for another attempt, unless it wraps ErrUndeliverable. Once
// the mail server accepts the message, or refuses it for good, or on the
// last attempt, the outcome is recorded in the ticket's history (History).
// Errors name the server as Settings.String does, never its password nor
// the link.
func (m *Mailer) Deliver(ctx context.Context, key, sealed string, lastAttempt bool) error {
	plain, err := m.sealer.Open(sealed, aad(key))
	if err != nil {
		return fmt.Errorf("notify: queued mail %s %w (%w): was it sealed with another seal key?", key, err, ErrUndeliverable)
	}
	var q queued
	if err := json.Unmarshal(plain, &q); err != nil {
		return fmt.Errorf("notify: queued mail %s: %w (%w)", key, err, ErrUndeliverable)
	}
	log := m.log.With(slog.Int64("ticket", q.Mail.TicketNumber), slog.String("to", q.To), slog.String("key", key), slog.String("server", m.cfg.Server.String()))
	msg, err := m.message(q)
	if err != nil {
		return m.failed(ctx, log, q, fmt.Errorf("notify: ticket %d: %w (%w)", q.Mail.TicketNumber, err, ErrUndeliverable), true)
	}
	if err := m.send(ctx, msg); err != nil {
		err = fmt.Errorf("notify: mail for ticket %d to %s via %s: %w", q.Mail.TicketNumber, q.To, m.cfg.Server, m.redact(err))
		var se *gomail.SendError
		permanent := errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500
		if permanent {
			err = fmt.Errorf("%w (%w)", err, ErrUndeliverable)
		}
		return m.failed(ctx, log, q, err, permanent || lastAttempt)
	}
	log.InfoContext(ctx, "link mailed")
	m.record(ctx, log, q, "")
	return nil
}

// failed logs a failed attempt and, when it is final, records it.
func (m *Mailer) failed(ctx context.Context, log *slog.Logger, q queued, err error, final bool) error {
	if !final {
		log.WarnContext(ctx, "link mail not sent; it will be tried again", slog.Any("error", err))
		return err
	}
	log.ErrorContext(ctx, "link mail not sent, for good: hand the link over another way", slog.Any("error", err))
	m.record(ctx, log, q, err.Error())
	return err
}

// record writes the outcome in the ticket's history. A failure to do so
// is logged, not returned: the mail has been sent (or given up), and a
// retry would send it again.
func (m *Mailer) record(ctx context.Context, log *slog.Logger, q queued, failure string) {
	if m.cfg.History == nil {
		return
	}
	if err := m.cfg.History.RecordMail(ctx, q.Mail.TicketNumber, q.To, failure); err != nil {
		log.ErrorContext(ctx, "the link mail's outcome was not recorded in the ticket's history", slog.Any("error", err))
	}
}

// send makes one connection to the mail server and sends msg.
func (m *Mailer) send(ctx context.Context, msg *gomail.Msg) error {
	s := m.cfg.Server
	tlsConfig := &tls.Config{ServerName: s.Host, RootCAs: m.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	dial := m.cfg.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: m.cfg.Timeout}
		dial = d.DialContext
	}
	if s.TLS == Implicit {
		plain := dial
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := plain(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(conn, tlsConfig)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
				return nil, err
			}
			return tc, nil
		}
	}
	// go-mail wraps the connection in TLS itself only with its own
	// dialer: with ours, implicit TLS is done above, and the policy
	// below only says whether to STARTTLS (Opportunistic on an implicit
	// TLS connection finds no STARTTLS offered and keeps the connection
	// as it is, which then counts as encrypted for authentication).
	policy := gomail.TLSMandatory
	switch s.TLS {
	case Implicit, Opportunistic:
		policy = gomail.TLSOpportunistic
	case NoTLS:
		policy = gomail.NoTLS
	}
	opts := []gomail.Option{
		gomail.WithPort(s.Port),
		gomail.WithTimeout(m.cfg.Timeout),
		gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithDialContextFunc(gomail.DialContextFunc(dial)),
	}
	if s.Username != "" {
		// The strongest mechanism the server offers; PLAIN and LOGIN only
		// over TLS. On loopback without TLS, PLAIN (which go-mail allows
		// to localhost only).
		auth := gomail.SMTPAuthAutoDiscover
		if s.TLS == NoTLS || s.TLS == Opportunistic {
			auth = gomail.SMTPAuthPlain
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.Username), gomail.WithPassword(s.Password))
	}
	c, err := gomail.NewClient(s.Host, opts...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*m.cfg.Timeout)
	defer cancel()
	return c.DialAndSendWithContext(ctx, msg)
}

// redact removes the password from an error's text, in case a server
// echoed it back (as typed, or as the PLAIN mechanism encodes it).
func (m *Mailer) redact(err error) error {
	p := m.cfg.Server.Password
	if err == nil || p == "" {
		return err
	}
	text := err.Error()
	secrets := []string{p, base64.StdEncoding.EncodeToString([]byte("\x00" + m.cfg.Server.Username + "\x00" + p))}
	found := false
	for _, sec := range secrets {
		if strings.Contains(text, sec) {
			text, found = strings.ReplaceAll(text, sec, "xxxxx"), true
		}
	}
	if !found {
		return err
	}
	return &redactedError{text: text, err: err}
}

// redactedError is an error whose text was cleaned of a secret; it still
// unwraps to the original, for errors.As.
type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }
