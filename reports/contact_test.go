package reports_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/reports"
)

func TestCheckContact(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"  ", ""},
		{"jane@example.com", "jane@example.com"},
		{" jane@example.com ", "jane@example.com"},
		{"Jane Doe <jane@example.com>", "jane@example.com"},
		{"security+reports@sub.example.co.uk", "security+reports@sub.example.co.uk"},
	} {
		got, err := reports.CheckContact(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("CheckContact(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{
		"jane",
		"jane@",
		"@example.com",
		"jane@example.com, eve@example.com",
		"jane@example.com\r\nBcc: eve@example.com",
		"jane@example.com\nBcc: eve@example.com",
		"jane@example.com\x00",
		"Jane\r\n <jane@example.com>",
		`"jane doe"@example.com`,
		"jane@[127.0.0.1]",
		"jane\u202e@example.com",
		strings.Repeat("a", 250) + "@example.com",
		strings.Repeat("a", 2000),
	} {
		got, err := reports.CheckContact(bad)
		if !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("CheckContact(%q) = %q, %v; want ErrInvalid", bad, got, err)
			continue
		}
		if !strings.Contains(err.Error(), "contact") || len(err.Error()) > 300 {
			t.Errorf("CheckContact(%q): %q should name the field, briefly", bad, err)
		}
	}
}

// TestTicketContact: the contact address is stored with the ticket,
// shown in its answers, and the mail's fate lands in its history.
func TestTicketContact(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newTicketEnv(t, dialect, reports.TicketConfig{})
		ctx := t.Context()
		d := e.open(e.acmeC, reports.NewTicket{Products: []string{"app"}, Subject: "Audit", Message: "Please.", Contact: "Jane <jane@acme.example>"})
		if d.Contact != "jane@acme.example" {
			t.Fatalf("opened contact %q", d.Contact)
		}
		got, err := e.svc.Get(ctx, e.acmeC, d.ID)
		if err != nil || got.Contact != "jane@acme.example" {
			t.Fatalf("read contact %q, %v", got.Contact, err)
		}
		b, _ := json.Marshal(got)
		if !strings.Contains(string(b), `"contact":"jane@acme.example"`) {
			t.Errorf("JSON %s lacks the contact", b)
		}
		// None given: none stored, none shown.
		d2 := e.open(e.acmeC, reports.NewTicket{Products: []string{"app"}, Subject: "Audit", Message: "Please."})
		if b, _ := json.Marshal(d2); d2.Contact != "" || strings.Contains(string(b), "contact") {
			t.Errorf("a ticket without a contact: %s", b)
		}
		if _, err := e.svc.Open(ctx, e.acmeC, reports.NewTicket{Products: []string{"app"}, Subject: "x", Message: "y",
			Contact: "jane@acme.example\r\nBcc: eve@evil.example"}); !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("a contact with CRLF: %v, want ErrInvalid", err)
		}

		if err := e.svc.RecordMail(ctx, d.Number, d.Contact, ""); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.RecordMail(ctx, d.Number, d.Contact, "550 mailbox unavailable"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.RecordMail(ctx, 999999, "x@example.com", ""); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("an unknown ticket: %v, want ErrNotFound", err)
		}
		got, err = e.svc.Get(ctx, e.staff, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, ev := range got.History {
			types = append(types, ev.Type)
		}
		if want := []string{"opened", "mailed", "mail_failed"}; strings.Join(types, " ") != strings.Join(want, " ") {
			t.Fatalf("history %v, want %v", types, want)
		}
		var body struct{ To, Reason string }
		if err := json.Unmarshal(got.History[2].Body, &body); err != nil || body.To != "jane@acme.example" || body.Reason != "550 mailbox unavailable" ||
			got.History[2].Actor != reports.SystemActor {
			t.Errorf("mail_failed event %+v %s", got.History[2], got.History[2].Body)
		}
	})
}
