package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/vigil-sec/vigil/internal/jobs"
	"github.com/vigil-sec/vigil/reports/notify"
)

// The mails of secure links (reports/notify), with Config.SMTP: the
// mailer seals each message and queues it in the job queue's mail queue,
// which this process works; the mail server is dialed through the
// outbound policy, and each outcome lands in the ticket's history.
//
// Where a link is made, the secure-links step calls
//
//	if m := s.Mailer(); m != nil && ticket.Contact != "" {
//		err := m.SendLink(ctx, ticket.Contact, notify.LinkMail{…, URL: s.cfg.PublicURL + "/r/" + token})
//	}
//
// which returns once the mail is queued; an error there (a bad address)
// is logged, and the link stands.

// newMailer makes the mailer of Config.SMTP (nil without one). A mail
// server the outbound policy refuses by its address is refused here,
// at start, with what to allow; a name is checked when it is dialed.
func (s *Server) newMailer() (*notify.Mailer, error) {
	if s.cfg.SMTP == nil {
		return nil, nil
	}
	if err := s.outbound.CheckHost(s.cfg.SMTP.Host); err != nil {
		return nil, fmt.Errorf("server: mail server %s: %w: allow its address with --outbound-allow ADDRESS/32 (or --outbound-allow-loopback, --outbound-allow-private)",
			s.cfg.SMTP, err)
	}
	m, err := notify.New(notify.Config{
		Server:  *s.cfg.SMTP,
		SealKey: s.cfg.SealKey,
		Queue:   s.queue,
		History: s.tickets,
		Dial:    s.outbound.DialContext,
		RootCAs: s.cfg.SMTPRootCAs,
		Logger:  s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.log.Info("secure links are mailed to the tickets' contacts", slog.String("smtp", m.Server().String()))
	return m, nil
}

// Mailer returns the mailer of the secure links, or nil when the server
// has no mail server (Config.SMTP).
func (s *Server) Mailer() *notify.Mailer { return s.mailer }

// mailRunner works the queue's mail jobs with the mailer; a mail no
// retry can send is final for the queue.
type mailRunner struct{ s *Server }

func (r mailRunner) DeliverMail(ctx context.Context, key, sealed string, lastAttempt bool) error {
	err := r.s.mailer.Deliver(ctx, key, sealed, lastAttempt)
	if errors.Is(err, notify.ErrUndeliverable) {
		return jobs.Permanent(err)
	}
	return err
}
