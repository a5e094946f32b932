package cli

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/reports/notify"
)

// smtpFlags are serve's mail server flags: the secure links of approved
// tickets are mailed to the tickets' contacts through it.
type smtpFlags struct {
	url, from, caCert string
}

func (m *smtpFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&m.url, "smtp-url", "", "mail server the secure links of approved tickets are mailed through to the tickets' contact addresses: "+
		"smtp://[USER:PASS@]HOST[:587][?from=ADDRESS] (STARTTLS required but on loopback; &starttls=off to send in clear) or smtps://[USER:PASS@]HOST[:465] (implicit TLS); "+
		"$VIGIL_SMTP_URL keeps the password off the command line; empty sends no mail")
	fl.StringVar(&m.from, "smtp-from", "", `the mails' sender, "reports@vendor.example" or "Vendor Reports <reports@vendor.example>", if --smtp-url has no ?from=`)
	fl.StringVar(&m.caCert, "smtp-ca-cert", "", "PEM file of the CA(s) that issued the mail server's certificate (default: the system's)")
}

// settings checks the flags and returns the mail server and the CAs of
// its certificate; nil settings without --smtp-url. Errors never show
// the URL's password.
func (m *smtpFlags) settings() (*notify.Settings, *x509.CertPool, error) {
	if m.url == "" {
		if m.from != "" || m.caCert != "" {
			return nil, nil, &usageError{errors.New("--smtp-from and --smtp-ca-cert need --smtp-url")}
		}
		return nil, nil, nil
	}
	s, err := notify.ParseURL(m.url)
	if err != nil {
		return nil, nil, &usageError{fmt.Errorf("--smtp-url %s: %w", notify.Redact(m.url), err)}
	}
	if m.from != "" {
		from, err := notify.ParseFrom(m.from)
		switch {
		case err != nil:
			return nil, nil, &usageError{fmt.Errorf("--smtp-from: %w", err)}
		case s.From != nil && s.From.Address != from.Address:
			return nil, nil, &usageError{fmt.Errorf("--smtp-from %s and the ?from= of --smtp-url (%s) differ: give the sender once", from.Address, s.From.Address)}
		}
		s.From = from
	}
	if s.From == nil {
		return nil, nil, &usageError{fmt.Errorf("--smtp-url %s has no sender: add ?from=ADDRESS or give --smtp-from", s)}
	}
	var roots *x509.CertPool
	if m.caCert != "" {
		if roots, err = httpx.LoadClientCAs(m.caCert); err != nil {
			return nil, nil, &usageError{fmt.Errorf("--smtp-ca-cert: %w", err)}
		}
	}
	return &s, roots, nil
}
