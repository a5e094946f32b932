package server_test

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/vigil-sec/vigil/internal/server"
	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/reports/notify"
)

// mailbox is a real SMTP server on loopback (emersion/go-smtp) that keeps
// the messages it accepts; refuse decides, for the n-th DATA, whether to
// refuse it.
type mailbox struct {
	addr   string
	mu     sync.Mutex
	msgs   []*mail.Message
	rcpts  [][]string
	datas  int
	refuse func(n int, rcpt string) error
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	mb := &mailbox{}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mbSession{mb: mb}, nil }))
	s.Domain, s.AllowInsecureAuth = "mail.test", true
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = l.Addr().String()
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return mb
}

type mbSession struct {
	mb *mailbox
	to []string
}

func (s *mbSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mbSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *mbSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	defer s.mb.mu.Unlock()
	s.mb.datas++
	if s.mb.refuse != nil {
		if err := s.mb.refuse(s.mb.datas, strings.Join(s.to, ",")); err != nil {
			return err
		}
	}
	m, err := mail.ReadMessage(bytes.NewReader(b))
	if err != nil {
		return err
	}
	s.mb.msgs, s.mb.rcpts = append(s.mb.msgs, m), append(s.mb.rcpts, s.to)
	return nil
}

func (s *mbSession) Reset()        { s.to = nil }
func (s *mbSession) Logout() error { return nil }

func (mb *mailbox) received() ([]*mail.Message, [][]string, int) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]*mail.Message(nil), mb.msgs...), append([][]string(nil), mb.rcpts...), mb.datas
}

// TestMailedLink: with --smtp-url, a link mailed to a ticket's contact
// goes through the job queue: a server that refuses twice gets it on the
// third attempt, the ticket's history says "mailed"; one that refuses it
// for good gets one attempt and the history says "mail_failed". The
// link's token is nowhere in the database in clear.
func TestMailedLink(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		mb := startMailbox(t)
		mb.refuse = func(n int, rcpt string) error {
			switch {
			case strings.Contains(rcpt, "gone@"):
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			case n <= 2:
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
			}
			return nil
		}
		smtpSettings, err := notify.ParseURL("smtp://" + mb.addr + "?from=reports@vendor.example")
		if err != nil {
			t.Fatal(err)
		}
		e, logs := newEnv(t, dialect, envConfig{start: true, modify: func(c *server.Config) {
			c.SMTP = &smtpSettings
			c.PublicURL = "https://vigil.vendor.example"
			c.Jobs.MailBackoff = func(int) time.Duration { return 100 * time.Millisecond }
		}})
		f := newTicketFixture(t, e)
		ctx := t.Context()

		open := func(contact string) ticketJSON {
			var tk ticketJSON
			if code := e.do("POST", "/api/v1/tickets", map[string]any{"tenant_id": f.acme, "products": []string{"app"},
				"subject": "Audit report", "message": "Please.", "contact": contact}, &tk); code != http.StatusCreated {
				t.Fatalf("open a ticket for %s: %d", contact, code)
			}
			return tk
		}
		// A contact with a line break is refused by the API.
		var apiErr struct{ Code, Message string }
		if code := e.do("POST", "/api/v1/tickets", map[string]any{"tenant_id": f.acme, "products": []string{"app"},
			"subject": "x", "message": "y", "contact": "jane@acme.example\r\nBcc: eve@evil.example"}, &apiErr); code != http.StatusBadRequest || !strings.Contains(apiErr.Message, "contact") {
			t.Errorf("a contact with CRLF: %d %+v, want 400 naming contact", code, apiErr)
		}

		tk := open("Jane <jane@acme.example>")
		var got struct {
			Contact string
		}
		if code := e.do("GET", "/api/v1/tickets/"+tk.ID, nil, &got); code != 200 || got.Contact != "jane@acme.example" {
			t.Fatalf("GET the ticket: %d, contact %q", code, got.Contact)
		}
		const token = "cmVwb3J0LWxpbmstdG9rZW4tbmV2ZXItaW4tY2xlYXI"
		lm := notify.LinkMail{Product: "app", Version: "1.0.0", TicketNumber: tk.Number,
			URL: "https://vigil.vendor.example/r/" + token, Expires: time.Now().Add(7 * 24 * time.Hour), DownloadsLeft: 5}
		if e.srv.Mailer() == nil {
			t.Fatal("no mailer with Config.SMTP")
		}
		if err := e.srv.Mailer().SendLink(ctx, got.Contact, lm); err != nil {
			t.Fatal(err)
		}
		// What is queued holds no secret in clear.
		for _, v := range storetest.Dump(t, e.db) {
			if strings.Contains(v, token) {
				t.Fatalf("the token is in the database in clear: %.200s", v)
			}
		}

		waitHistory := func(id, typ string) ticketJSON {
			t.Helper()
			deadline := time.Now().Add(2 * time.Minute)
			for {
				var d ticketJSON
				e.do("GET", "/api/v1/tickets/"+id, nil, &d)
				for _, h := range d.History {
					if h.Type == typ {
						return d
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("ticket %s: no %s in its history after 2 minutes: %v", id, typ, d.kinds())
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		d := waitHistory(tk.ID, "mailed")
		msgs, rcpts, datas := mb.received()
		if len(msgs) != 1 || datas != 3 || len(rcpts[0]) != 1 || rcpts[0][0] != "jane@acme.example" {
			t.Fatalf("%d messages to %v after %d DATA, want one to jane on the third", len(msgs), rcpts, datas)
		}
		text, _ := io.ReadAll(quotedprintable.NewReader(msgs[0].Body))
		if !strings.Contains(string(text), lm.URL) || msgs[0].Header.Get("To") != "<jane@acme.example>" {
			t.Errorf("the message: To %q, body\n%s", msgs[0].Header.Get("To"), text)
		}
		last := d.History[len(d.History)-1]
		if last.Type != "mailed" || last.Actor != "system" || last.Body["to"] != "jane@acme.example" {
			t.Errorf("history %v, last %+v", d.kinds(), last)
		}

		// Refused for good: one attempt, mail_failed.
		tk2 := open("gone@acme.example")
		lm.TicketNumber, lm.URL = tk2.Number, lm.URL+"2"
		if err := e.srv.Mailer().SendLink(ctx, "gone@acme.example", lm); err != nil {
			t.Fatal(err)
		}
		d = waitHistory(tk2.ID, "mail_failed")
		last = d.History[len(d.History)-1]
		if reason, _ := last.Body["reason"].(string); !strings.Contains(reason, "550") || strings.Contains(reason, token) {
			t.Errorf("mail_failed reason %q", reason)
		}
		if _, _, datas := mb.received(); datas != 4 {
			t.Errorf("%d DATA in all, want 4: a permanent refusal is not retried", datas)
		}
		if strings.Contains(logs.String(), token) {
			t.Error("the token is in the server's log")
		}
	})
}

// TestMailServerOutsidePolicy: a mail server at an address the outbound
// policy refuses stops the server at start, saying what to allow.
func TestMailServerOutsidePolicy(t *testing.T) {
	db, blobs := openStore(t, store.SQLite)
	s, err := notify.ParseURL("smtp://user:pw-not-shown@127.0.0.1:25?from=reports@vendor.example&starttls=required")
	if err != nil {
		t.Fatal(err)
	}
	_, err = server.New(t.Context(), server.Config{DB: db, Blobs: blobs, SealKey: make([]byte, server.SealKeySize), SMTP: &s})
	if err == nil || !strings.Contains(err.Error(), "--outbound-allow") || strings.Contains(err.Error(), "pw-not-shown") {
		t.Fatalf("New = %v, want a refusal naming --outbound-allow, without the password", err)
	}
}

// Approval mails the link it made to the ticket's contact: the URL in the
// mail is the one the approval answered with.
func TestApprovalMailsTheLink(t *testing.T) {
	mb := startMailbox(t)
	smtpSettings, err := notify.ParseURL("smtp://" + mb.addr + "?from=reports@vendor.example")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := newEnv(t, store.SQLite, envConfig{start: true, modify: func(c *server.Config) {
		c.SMTP = &smtpSettings
		c.PublicURL = "https://vigil.vendor.example"
	}})
	f := newTicketFixture(t, e)
	r, clean, _ := repo(t)
	e.createProject("app", "file://"+r.Dir)
	var sc struct{ ID string }
	if code := e.do("POST", "/api/v1/scans", map[string]any{"project": "app", "commit": clean}, &sc); code != http.StatusAccepted {
		t.Fatalf("POST scan: %d", code)
	}
	if s := e.waitScan(sc.ID); s.Status != "succeeded" {
		t.Fatalf("scan: %s (%s)", s.Status, s.Error)
	}
	if code := e.do("POST", "/api/v1/releases", map[string]any{"product_id": "app", "version": "2.1.0", "projects": []string{"app@" + clean}}, nil); code != http.StatusCreated {
		t.Fatalf("release: %d", code)
	}
	var tk ticketJSON
	if code := e.doWith(f.acmeC, "POST", "/api/v1/tickets", map[string]any{"products": []string{"app"}, "subject": "Report",
		"message": "Please.", "contact": "jane@acme.example"}, &tk); code != http.StatusCreated {
		t.Fatalf("open: %d", code)
	}
	var approved struct{ Links []linkJSON }
	if code := e.doWith(f.staff, "POST", "/api/v1/tickets/"+tk.ID+"/approve", nil, &approved); code != http.StatusOK || len(approved.Links) != 1 {
		t.Fatalf("approve: %d %+v", code, approved)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		msgs, rcpts, _ := mb.received()
		if len(msgs) == 1 {
			text, _ := io.ReadAll(quotedprintable.NewReader(msgs[0].Body))
			if rcpts[0][0] != "jane@acme.example" || !strings.Contains(string(text), approved.Links[0].URL) || !strings.Contains(string(text), "2.1.0") {
				t.Errorf("mail to %v:\n%s\nwant the link %s", rcpts, text, approved.Links[0].URL)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail after 2 minutes (%d messages)", len(msgs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
