package notify

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	gomail "github.com/wneessen/go-mail"
)

// message writes the mail of a queued link: text/plain in UTF-8,
// quoted-printable, with Date, Message-ID and Auto-Submitted. The subject
// and the body quote the product and version, which come from users:
// they are cut to one line of bounded length, and go-mail encodes a
// subject that is not plain ASCII (RFC 2047), so no line break of theirs
// reaches the header.
func (m *Mailer) message(q queued) (*gomail.Msg, error) {
	product, version := oneLine(q.Mail.Product, maxName), oneLine(q.Mail.Version, maxVersion)
	msg := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingQP), gomail.WithNoDefaultUserAgent())
	from := *m.cfg.Server.From
	from.Name = oneLine(from.Name, maxName)
	if err := msg.EnvelopeFrom(from.Address); err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	msg.FromMailAddress(&from)
	msg.ToMailAddress(&mail.Address{Address: q.To})
	msg.Subject(fmt.Sprintf("Security audit report: %s %s (ticket %d)", product, version, q.Mail.TicketNumber))
	msg.SetMessageIDWithValue(q.MessageID)
	msg.SetDateWithValue(q.Date)
	// RFC 3834: no vacation replies to this.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, body(q.Mail, product, version))
	return msg, nil
}

// body is the text of the mail.
func body(lm LinkMail, product, version string) string {
	downloads := "1 download"
	if lm.DownloadsLeft != 1 {
		downloads = fmt.Sprintf("%d downloads", lm.DownloadsLeft)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello,\n\n")
	fmt.Fprintf(&b, "The security audit report you asked for in ticket %d is ready.\n\n", lm.TicketNumber)
	fmt.Fprintf(&b, "  Product:  %s\n  Version:  %s\n\n", product, version)
	fmt.Fprintf(&b, "Open this link to see the report's files and download them:\n\n%s\n\n", lm.URL)
	fmt.Fprintf(&b, "The link expires on %s\nand allows %s.\n\n", lm.Expires.UTC().Format("2 January 2006 at 15:04 UTC"), downloads)
	fmt.Fprintf(&b, "Opening the link does not use up a download: the download starts when you\n")
	fmt.Fprintf(&b, "press the button on its page, which also lists the files with their SHA-256\n")
	fmt.Fprintf(&b, "digests and says how to verify the report's signature offline.\n\n")
	fmt.Fprintf(&b, "Anyone who holds this link can download the report: please do not forward\n")
	fmt.Fprintf(&b, "this message. If it expires or runs out, reply on the ticket and we will\n")
	fmt.Fprintf(&b, "send a new one.\n")
	return b.String()
}

// oneLine makes user text fit one header line: control characters, line
// and paragraph separators and bidirectional controls become spaces, runs
// of spaces one, and it is cut to at most max runes.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) || unicode.Is(unicode.Bidi_Control, r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, " "))
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return s
}
