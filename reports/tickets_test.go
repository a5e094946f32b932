package reports_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/internal/store"
	"github.com/vigil-sec/vigil/internal/store/storetest"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/webhooks"
	"github.com/vigil-sec/vigil/reports"
)

// testSecret is the licensing secret of the tests (the server derives it
// from its seal key).
var testSecret = []byte("reports-test-secret-of-32-bytes!")

// ticketEnv is a ticket service on a fresh database, with two tenants:
// acme holds active entitlements to "app" and "agent", globex to "app";
// "legacy" exists but neither holds it.
type ticketEnv struct {
	t       *testing.T
	clock   *clock
	db      *store.DB
	lic     *licensing.Service
	svc     *reports.TicketService
	acme    string
	globex  string
	staff   reports.Actor
	acmeC   reports.Actor // a client bound to acme
	globexC reports.Actor // a client bound to globex
}

func newTicketEnv(t *testing.T, dialect store.Dialect, cfg reports.TicketConfig) *ticketEnv {
	t.Helper()
	ctx := t.Context()
	db := storetest.Open(t, dialect)
	lcfg := licensing.DefaultConfig()
	lcfg.Secret = testSecret
	lcfg.Logger = storetest.Logger(t)
	c := &clock{at: time.Now()}
	lcfg.Now = c.now
	lic, err := licensing.New(ctx, db, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = storetest.Logger(t)
	cfg.Now = c.now
	svc, err := reports.NewTicketService(db, lic, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &ticketEnv{t: t, clock: c, db: db, lic: lic, svc: svc}
	for _, p := range []string{"app", "agent", "legacy"} {
		if _, err := lic.CreateProduct(ctx, p, "Product "+p); err != nil {
			t.Fatal(err)
		}
	}
	e.acme = e.tenant("Acme", "app", "agent")
	e.globex = e.tenant("Globex", "app")
	e.staff = reports.Actor{ClientID: "staff-client", Staff: true}
	e.acmeC = reports.Actor{ClientID: "acme-client", TenantID: e.acme}
	e.globexC = reports.Actor{ClientID: "globex-client", TenantID: e.globex}
	return e
}

// clock is the services' clock, which a test moves on.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// tenant makes a tenant entitled to the products.
func (e *ticketEnv) tenant(name string, products ...string) string {
	e.t.Helper()
	tn, err := e.lic.CreateTenant(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range products {
		e.entitle(tn.ID, p)
	}
	return tn.ID
}

func (e *ticketEnv) entitle(tenantID, product string) licensing.CreatedEntitlement {
	e.t.Helper()
	ce, err := e.lic.CreateEntitlement(e.t.Context(), licensing.NewEntitlement{TenantID: tenantID, ProductID: product, Seats: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	return ce
}

func (e *ticketEnv) open(a reports.Actor, nt reports.NewTicket) reports.TicketDetail {
	e.t.Helper()
	d, err := e.svc.Open(e.t.Context(), a, nt)
	if err != nil {
		e.t.Fatalf("Open(%+v) = %v", nt, err)
	}
	return d
}

func ask(tenant string, products ...string) reports.NewTicket {
	return reports.NewTicket{TenantID: tenant, Products: products, Subject: "Latest audit report", Message: "Please send the latest report.\nThanks."}
}

// kinds are the types and actors of a history: "opened by x".
func kinds(h []reports.TicketEvent) []string {
	var out []string
	for i, ev := range h {
		if ev.Seq != i+1 {
			out = append(out, fmt.Sprintf("seq %d at %d", ev.Seq, i))
		}
		out = append(out, ev.Type+" by "+ev.Actor)
	}
	return out
}

func body(t *testing.T, ev reports.TicketEvent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Body, &m); err != nil {
		t.Fatalf("event %d body %q: %v", ev.Seq, ev.Body, err)
	}
	return m
}

func TestTicketLifecycle(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newTicketEnv(t, dialect, reports.TicketConfig{})
		ctx := t.Context()

		byStaff := e.open(e.staff, ask(e.acme, "app"))
		byAcme := e.open(e.acmeC, ask("", "agent", "app", "agent"))
		if byStaff.Number != 1 || byAcme.Number != 2 {
			t.Errorf("numbers %d, %d; want 1, 2", byStaff.Number, byAcme.Number)
		}
		if byAcme.TenantID != e.acme || byAcme.CreatedBy != "acme-client" || byAcme.Status != reports.TicketOpen {
			t.Errorf("ticket = %+v; want acme's, by acme-client, open", byAcme.Ticket)
		}
		if got, want := byAcme.Products, []string{"agent", "app"}; !slices.Equal(got, want) {
			t.Errorf("products = %q, want %q (sorted, once)", got, want)
		}
		if got, want := kinds(byAcme.History), []string{"opened by acme-client"}; !slices.Equal(got, want) {
			t.Errorf("history = %q, want %q", got, want)
		}

		if _, err := e.svc.Comment(ctx, e.acmeC, "2", "Any news?"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Comment(ctx, e.staff, byAcme.ID, "Looking at it."); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Approve(ctx, e.acmeC, "2", ""); !errors.Is(err, reports.ErrForbidden) {
			t.Errorf("approval by the tenant's client: %v, want ErrForbidden", err)
		}
		d, err := e.svc.Approve(ctx, e.staff, "2", "1.4.0")
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != reports.TicketApproved || d.Release != "1.4.0" || d.UpdatedAt.Before(d.CreatedAt) {
			t.Errorf("approved ticket = %+v", d.Ticket)
		}
		want := []string{"opened by acme-client", "commented by acme-client", "commented by staff-client", "approved by staff-client"}
		if got := kinds(d.History); !slices.Equal(got, want) {
			t.Errorf("history = %q, want %q", got, want)
		}
		if b := body(t, d.History[1]); b["message"] != "Any news?" {
			t.Errorf("comment body = %v", b)
		}
		if b := body(t, d.History[3]); b["release"] != "1.4.0" {
			t.Errorf("approval body = %v", b)
		}
		for _, decide := range []func() error{
			func() error { _, err := e.svc.Approve(ctx, e.staff, "2", ""); return err },
			func() error { _, err := e.svc.Reject(ctx, e.staff, "2", "too late"); return err },
		} {
			if err := decide(); !errors.Is(err, reports.ErrConflict) || !strings.Contains(err.Error(), "ticket 2 is approved already") {
				t.Errorf("deciding an approved ticket: %v, want a conflict saying so", err)
			}
		}

		r, err := e.svc.Reject(ctx, e.staff, "1", "No report for this product yet.\nAsk again in May.")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != reports.TicketRejected || !slices.Equal(kinds(r.History), []string{"opened by staff-client", "rejected by staff-client"}) {
			t.Errorf("rejected = %s %q", r.Status, kinds(r.History))
		}
		if b := body(t, r.History[1]); b["reason"] != "No report for this product yet.\nAsk again in May." {
			t.Errorf("rejection body = %v", b)
		}
		// A rejected ticket takes comments still.
		if _, err := e.svc.Comment(ctx, e.acmeC, "1", "Why?"); err != nil {
			t.Errorf("comment on a rejected ticket: %v", err)
		}

		got, err := e.svc.Get(ctx, e.staff, "2")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(kinds(got.History), want) || got.Status != reports.TicketApproved || got.Release != "1.4.0" {
			t.Errorf("Get = %s %q %q", got.Status, got.Release, kinds(got.History))
		}
		open, _, err := e.svc.List(ctx, e.staff, reports.TicketQuery{Status: reports.TicketOpen})
		if err != nil || len(open) != 0 {
			t.Errorf("open tickets = %v, %v; want none", open, err)
		}
		all, next, err := e.svc.List(ctx, e.staff, reports.TicketQuery{Limit: 1})
		if err != nil || len(all) != 1 || all[0].Number != 1 || next == "" {
			t.Fatalf("first page = %v, %q, %v", all, next, err)
		}
		all, next, err = e.svc.List(ctx, e.staff, reports.TicketQuery{Limit: 1, Cursor: next})
		if err != nil || len(all) != 1 || all[0].Number != 2 || next != "" {
			t.Errorf("second page = %v, %q, %v", all, next, err)
		}
	})
}

// A client bound to a tenant sees its tenant's tickets only; another
// tenant's answers exactly as a ticket that does not exist.
func TestTicketTenantIsolation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newTicketEnv(t, dialect, reports.TicketConfig{})
		ctx := t.Context()
		acme := e.open(e.acmeC, ask("", "app"))
		e.open(e.globexC, ask("", "app"))

		for _, c := range []struct{ ref, unknown string }{{"1", "99"}, {acme.ID, "0190a3c4-0000-7000-8000-000000000000"}} {
			_, err := e.svc.Get(ctx, e.globexC, c.ref)
			_, unknown := e.svc.Get(ctx, e.globexC, c.unknown)
			if !errors.Is(err, reports.ErrNotFound) || unknown == nil ||
				strings.ReplaceAll(err.Error(), c.ref, "X") != strings.ReplaceAll(unknown.Error(), c.unknown, "X") {
				t.Errorf("Get(%s) by globex = %v; want the not-found of an unknown ticket (%v)", c.ref, err, unknown)
			}
			if _, err := e.svc.Comment(ctx, e.globexC, c.ref, "mine now"); !errors.Is(err, reports.ErrNotFound) {
				t.Errorf("Comment(%s) by globex = %v, want ErrNotFound", c.ref, err)
			}
		}
		if _, err := e.svc.Open(ctx, e.globexC, ask(e.acme, "app")); !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("globex opening for acme: %v, want ErrInvalid", err)
		}
		ts, _, err := e.svc.List(ctx, e.globexC, reports.TicketQuery{})
		if err != nil || len(ts) != 1 || ts[0].TenantID != e.globex {
			t.Errorf("globex's list = %+v, %v; want its one ticket", ts, err)
		}
		if _, _, err := e.svc.List(ctx, e.globexC, reports.TicketQuery{TenantID: e.acme}); !errors.Is(err, reports.ErrInvalid) {
			t.Errorf("globex listing acme's: %v, want ErrInvalid", err)
		}
		unbound := reports.Actor{ClientID: "writer"} // tickets:write without a tenant
		if _, err := e.svc.Open(ctx, unbound, ask(e.acme, "app")); !errors.Is(err, reports.ErrForbidden) {
			t.Errorf("Open by an unbound customer client: %v, want ErrForbidden", err)
		}
		if _, err := e.svc.Get(ctx, unbound, "1"); !errors.Is(err, reports.ErrForbidden) {
			t.Errorf("Get by an unbound customer client: %v, want ErrForbidden", err)
		}
		// Bound wins over staff: a tenant's client never acts for others.
		both := reports.Actor{ClientID: "odd", TenantID: e.globex, Staff: true}
		if _, err := e.svc.Get(ctx, both, "1"); !errors.Is(err, reports.ErrNotFound) {
			t.Errorf("Get by a bound client marked staff: %v, want ErrNotFound", err)
		}
		if _, err := e.svc.Approve(ctx, both, "2", ""); !errors.Is(err, reports.ErrForbidden) {
			t.Errorf("Approve by a bound client marked staff: %v, want ErrForbidden", err)
		}
	})
}

// A product the tenant holds no active entitlement to is refused, named,
// at opening and at approval.
func TestTicketNotEntitled(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newTicketEnv(t, dialect, reports.TicketConfig{})
		ctx := t.Context()
		notEntitled := func(err error, products ...string) {
			t.Helper()
			var ne *reports.NotEntitledError
			if !errors.As(err, &ne) || !slices.Equal(ne.Products, products) || !errors.Is(err, reports.ErrConflict) {
				t.Fatalf("err = %v, want a NotEntitledError for %q", err, products)
			}
			for _, p := range products {
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", p)) {
					t.Errorf("%q does not name %q", err, p)
				}
			}
		}
		_, err := e.svc.Open(ctx, e.globexC, ask("", "app", "agent", "legacy"))
		notEntitled(err, "agent", "legacy")
		_, err = e.svc.Open(ctx, e.staff, ask(e.globex, "agent"))
		notEntitled(err, "agent")
		// A tenant's client does not learn which products exist.
		_, err = e.svc.Open(ctx, e.globexC, ask("", "app", "no-such-product", "agent"))
		notEntitled(err, "agent", "no-such-product")
		// Staff are told.
		if _, err := e.svc.Open(ctx, e.staff, ask(e.globex, "no-such-product")); !errors.Is(err, reports.ErrInvalid) || !strings.Contains(err.Error(), `"no-such-product": no such product`) {
			t.Errorf("staff, unknown product: %v", err)
		}
		if _, err := e.svc.Open(ctx, e.staff, ask("no-such-tenant", "app")); !errors.Is(err, reports.ErrInvalid) || !strings.Contains(err.Error(), "no such tenant") {
			t.Errorf("staff, unknown tenant: %v", err)
		}

		// Suspended and expired entitlements are not active.
		initech := e.tenant("Initech")
		ent := e.entitle(initech, "app")
		if err := e.lic.SuspendEntitlement(ctx, ent.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Open(ctx, e.staff, ask(initech, "app"))
		notEntitled(err, "app")
		expiry := e.clock.now().Add(time.Hour)
		if _, err := e.lic.CreateEntitlement(ctx, licensing.NewEntitlement{TenantID: initech, ProductID: "agent", Seats: 1, ExpiresAt: expiry}); err != nil {
			t.Fatal(err)
		}
		e.open(e.staff, ask(initech, "agent"))
		e.clock.advance(time.Hour) // expired at its expiry
		_, err = e.svc.Open(ctx, e.staff, ask(initech, "agent"))
		notEntitled(err, "agent")
		if err := e.lic.ResumeEntitlement(ctx, ent.ID); err != nil {
			t.Fatal(err)
		}
		d := e.open(e.staff, ask(initech, "app"))
		if d.Number != 2 {
			t.Fatalf("number = %d, want 2", d.Number)
		}

		// An entitlement suspended after the opening refuses the approval,
		// and the ticket stays open as it was.
		if err := e.lic.SuspendEntitlement(ctx, ent.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Approve(ctx, e.staff, fmt.Sprint(d.Number), "")
		notEntitled(err, "app")
		if err := e.lic.SuspendTenant(ctx, initech); err != nil {
			t.Fatal(err)
		}
		if err := e.lic.ResumeEntitlement(ctx, ent.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Approve(ctx, e.staff, fmt.Sprint(d.Number), "")
		notEntitled(err, "app") // a suspended tenant holds none
		got, err := e.svc.Get(ctx, e.staff, d.ID)
		if err != nil || got.Status != reports.TicketOpen || len(got.History) != 1 {
			t.Errorf("after refused approvals: %s %q, %v; want open with its opening only", got.Status, kinds(got.History), err)
		}
	})
}

// fulfiller records the tickets it is handed and who approved them; it
// makes no link, as a product without a ready release would.
type fulfiller struct {
	mu     sync.Mutex
	got    []reports.Ticket
	actors []string
}

func (f *fulfiller) Fulfill(_ context.Context, a reports.Actor, t reports.Ticket) ([]reports.IssuedLink, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, t)
	f.actors = append(f.actors, a.ClientID)
	return nil, fmt.Errorf("%w: product app has no ready release", reports.ErrConflict) // logged and said; the approval stands
}

func TestTicketAutoApprove(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		f := &fulfiller{}
		e := newTicketEnv(t, dialect, reports.TicketConfig{AutoApprove: reports.AutoApproveEntitled, Fulfiller: f})
		ctx := t.Context()
		d := e.open(e.acmeC, ask("", "app", "agent"))
		if d.Status != reports.TicketApproved {
			t.Errorf("status = %s, want approved at once", d.Status)
		}
		if got, want := kinds(d.History), []string{"opened by acme-client", "approved by system"}; !slices.Equal(got, want) {
			t.Errorf("history = %q, want %q", got, want)
		}
		if b := body(t, d.History[1]); b["policy"] != reports.AutoApproveEntitled {
			t.Errorf("approval body = %v, want the policy named", b)
		}
		if len(f.got) != 1 || f.got[0].ID != d.ID || f.got[0].Status != reports.TicketApproved || f.actors[0] != reports.SystemActor {
			t.Errorf("fulfiller got %+v by %q, want the approved ticket once, by the system", f.got, f.actors)
		}
		if d.LinkError != "no secure link was made: conflict: product app has no ready release" || len(d.Links) != 0 {
			t.Errorf("answer's links %v, link error %q: want none, and why", d.Links, d.LinkError)
		}
		got, err := e.svc.Get(ctx, e.acmeC, d.ID)
		if err != nil || got.Status != reports.TicketApproved {
			t.Errorf("stored: %s, %v", got.Status, err)
		}
		// The unentitled are refused as ever, and nothing is approved.
		if _, err := e.svc.Open(ctx, e.globexC, ask("", "agent")); !errors.Is(err, reports.ErrConflict) {
			t.Errorf("unentitled under auto-approval: %v", err)
		}
		if len(f.got) != 1 {
			t.Errorf("fulfiller called %d times, want once", len(f.got))
		}
		// Staff approval hands the ticket over too.
		off := newTicketEnv(t, dialect, reports.TicketConfig{Fulfiller: f})
		o := off.open(off.acmeC, ask("", "app"))
		if o.Status != reports.TicketOpen {
			t.Errorf("without the policy: %s, want open", o.Status)
		}
		if _, err := off.svc.Approve(ctx, off.staff, "1", ""); err != nil || len(f.got) != 2 || f.actors[1] != off.staff.ClientID {
			t.Errorf("staff approval: %v, fulfiller called %d times by %q", err, len(f.got), f.actors)
		}
	})
	if _, err := reports.NewTicketService(nil, nil, reports.TicketConfig{AutoApprove: "always"}); err == nil {
		t.Error("NewTicketService took auto-approval policy \"always\"")
	}
}

// Bad input is refused, naming what is wrong, and changes nothing.
func TestTicketInputChangesNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newTicketEnv(t, dialect, reports.TicketConfig{})
		ctx := t.Context()
		d := e.open(e.acmeC, ask("", "app"))
		before, err := e.svc.Get(ctx, e.staff, "1")
		if err != nil {
			t.Fatal(err)
		}
		with := func(f func(*reports.NewTicket)) reports.NewTicket {
			nt := ask("", "app")
			f(&nt)
			return nt
		}
		many := make([]string, reports.MaxProducts+1)
		for i := range many {
			many[i] = fmt.Sprintf("p%d", i)
		}
		cases := []struct {
			name, want string
			do         func() error
		}{
			{"empty subject", "subject: is required", func() error {
				_, err := e.svc.Open(ctx, e.acmeC, with(func(n *reports.NewTicket) { n.Subject = "  " }))
				return err
			}},
			{"long subject", "subject: at most 200 characters, not 201", func() error {
				_, err := e.svc.Open(ctx, e.acmeC, with(func(n *reports.NewTicket) { n.Subject = strings.Repeat("é", 201) }))
				return err
			}},
			{"multiline subject", "subject: must not contain control characters", func() error {
				_, err := e.svc.Open(ctx, e.acmeC, with(func(n *reports.NewTicket) { n.Subject = "a\nb" }))
				return err
			}},
			{"long message", "message: at most 10000 characters", func() error {
				_, err := e.svc.Open(ctx, e.acmeC, with(func(n *reports.NewTicket) { n.Message = strings.Repeat("x", 10001) }))
				return err
			}},
			{"bidi override", "message: must not contain control characters (U+202E", func() error {
				_, err := e.svc.Open(ctx, e.acmeC, with(func(n *reports.NewTicket) { n.Message = "invoice\u202Efdp.exe" }))
				return err
			}},
			{"escape", "message: must not contain control characters (U+001B", func() error {
				_, err := e.svc.Open(ctx, e.acmeC, with(func(n *reports.NewTicket) { n.Message = "\x1b[2Jhi" }))
				return err
			}},
			{"bad UTF-8", "message: not valid UTF-8", func() error {
				_, err := e.svc.Open(ctx, e.acmeC, with(func(n *reports.NewTicket) { n.Message = "a\xffb" }))
				return err
			}},
			{"no product", "products: name at least one product", func() error {
				_, err := e.svc.Open(ctx, e.acmeC, with(func(n *reports.NewTicket) { n.Products = nil }))
				return err
			}},
			{"too many products", "products: at most 20", func() error {
				_, err := e.svc.Open(ctx, e.staff, with(func(n *reports.NewTicket) { n.TenantID, n.Products = e.acme, many }))
				return err
			}},
			{"product with a space", `products: "a b" is not a product ID`, func() error {
				_, err := e.svc.Open(ctx, e.acmeC, with(func(n *reports.NewTicket) { n.Products = []string{"a b"} }))
				return err
			}},
			{"staff without a tenant", "tenant_id is required", func() error {
				_, err := e.svc.Open(ctx, e.staff, ask("", "app"))
				return err
			}},
			{"empty comment", "message: is required", func() error { _, err := e.svc.Comment(ctx, e.acmeC, "1", "\n\t "); return err }},
			{"long comment", "message: at most 10000 characters", func() error {
				_, err := e.svc.Comment(ctx, e.acmeC, "1", strings.Repeat("y", 10001))
				return err
			}},
			{"rejection without a reason", "reason: is required", func() error { _, err := e.svc.Reject(ctx, e.staff, "1", ""); return err }},
			{"long reason", "reason: at most 2000 characters", func() error {
				_, err := e.svc.Reject(ctx, e.staff, "1", strings.Repeat("z", 2001))
				return err
			}},
			{"release with a newline", "release: must not contain control", func() error { _, err := e.svc.Approve(ctx, e.staff, "1", "1.0\n2.0"); return err }},
			{"long release", "release: at most 200 bytes", func() error {
				_, err := e.svc.Approve(ctx, e.staff, "1", strings.Repeat("1", 201))
				return err
			}},
			{"bad status filter", `status "closed": want open, approved, rejected`, func() error {
				_, _, err := e.svc.List(ctx, e.staff, reports.TicketQuery{Status: "closed"})
				return err
			}},
			{"bad limit", "limit 1001", func() error {
				_, _, err := e.svc.List(ctx, e.staff, reports.TicketQuery{Limit: 1001})
				return err
			}},
			{"bad cursor", "cursor", func() error {
				_, _, err := e.svc.List(ctx, e.staff, reports.TicketQuery{Cursor: "bm90LWEtdGlja2V0"})
				return err
			}},
		}
		for _, ref := range []string{"", "0", "-1", "007", "1.0", "12abc", "../1", "1 OR 1=1", strings.Repeat("9", 19), strings.ToUpper(d.ID), "{" + d.ID + "}"} {
			cases = append(cases,
				struct {
					name, want string
					do         func() error
				}{"get " + ref, "want a ticket number (42) or ID", func() error { _, err := e.svc.Get(ctx, e.staff, ref); return err }},
				struct {
					name, want string
					do         func() error
				}{"approve " + ref, "want a ticket number (42) or ID", func() error { _, err := e.svc.Approve(ctx, e.staff, ref, ""); return err }},
				struct {
					name, want string
					do         func() error
				}{"comment " + ref, "want a ticket number (42) or ID", func() error { _, err := e.svc.Comment(ctx, e.acmeC, ref, "hi"); return err }})
		}
		for _, c := range cases {
			err := c.do()
			if !errors.Is(err, reports.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: err = %v, want ErrInvalid saying %q", c.name, err, c.want)
			}
		}
		after, err := e.svc.Get(ctx, e.staff, "1")
		if err != nil {
			t.Fatal(err)
		}
		if after.Status != before.Status || !after.UpdatedAt.Equal(before.UpdatedAt) || !slices.Equal(kinds(after.History), kinds(before.History)) {
			t.Errorf("ticket changed: %+v, want %+v", after, before)
		}
		ts, _, err := e.svc.List(ctx, e.staff, reports.TicketQuery{})
		if err != nil || len(ts) != 1 {
			t.Errorf("tickets = %d, %v; want the one", len(ts), err)
		}
		// The refused openings took no number.
		if next := e.open(e.acmeC, ask("", "app")); next.Number != 2 {
			t.Errorf("next number = %d, want 2", next.Number)
		}
	})
}

// Numbers are unique and without gaps when tickets open at once.
func TestTicketNumbersConcurrent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newTicketEnv(t, dialect, reports.TicketConfig{})
		const n = 12
		numbers := make(chan int64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				a := []reports.Actor{e.acmeC, e.globexC}[i%2]
				d, err := e.svc.Open(t.Context(), a, ask("", "app"))
				if err != nil {
					t.Error(err)
					return
				}
				numbers <- d.Number
			})
		}
		wg.Wait()
		close(numbers)
		var got []int64
		for x := range numbers {
			got = append(got, x)
		}
		slices.Sort(got)
		for i, x := range got {
			if x != int64(i+1) {
				t.Fatalf("numbers = %v, want 1 to %d", got, n)
			}
		}
	})
}

// hookSink is a tenant's webhook endpoint: it checks every delivery's
// Standard Webhooks signature with the tenant's public key alone.
type hookSink struct {
	mu     sync.Mutex
	now    func() time.Time // the signatures' clock; nil: time.Now
	pub    string
	events []webhooks.Event
	bad    []string
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	h.mu.Lock()
	defer h.mu.Unlock()
	pub, err := webhooks.ParsePublicKey(h.pub)
	if err == nil {
		now := time.Now
		if h.now != nil {
			now = h.now
		}
		err = webhooks.Verify(r.Header, b, webhooks.Keys{Public: pub}, now())
	}
	var ev webhooks.Event
	if err == nil {
		err = json.Unmarshal(b, &ev)
	}
	if err != nil {
		h.bad = append(h.bad, err.Error())
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.events = append(h.events, ev)
	w.WriteHeader(http.StatusNoContent)
}

// Every change is announced to the ticket's tenant, signed, through its
// licensing webhook endpoints; the other tenant's hear nothing.
func TestTicketEventsAnnounced(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dialect store.Dialect) {
		e := newTicketEnv(t, dialect, reports.TicketConfig{})
		ctx := t.Context()
		sink := &hookSink{}
		srv := httptest.NewServer(sink)
		t.Cleanup(srv.Close)
		var err error
		if sink.pub, err = e.lic.WebhookKey(ctx, e.acme); err != nil {
			t.Fatal(err)
		}
		acmeHook, err := e.lic.CreateWebhook(ctx, licensing.NewWebhook{TenantID: e.acme, URL: srv.URL + "/acme"})
		if err != nil {
			t.Fatal(err)
		}
		// An endpoint that asked for licensing events only gets none of these.
		licOnly, err := e.lic.CreateWebhook(ctx, licensing.NewWebhook{TenantID: e.acme, URL: srv.URL + "/lic", Events: []string{webhooks.EventActivated}})
		if err != nil {
			t.Fatal(err)
		}
		globexHook, err := e.lic.CreateWebhook(ctx, licensing.NewWebhook{TenantID: e.globex, URL: srv.URL + "/globex"})
		if err != nil {
			t.Fatal(err)
		}

		d := e.open(e.staff, ask(e.acme, "app", "agent"))
		e.open(e.globexC, ask("", "app"))
		if _, err := e.svc.Comment(ctx, e.acmeC, "1", "Thanks!"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Approve(ctx, e.staff, "1", "2.0.1"); err != nil {
			t.Fatal(err)
		}
		// Refused changes announce nothing.
		e.svc.Reject(ctx, e.staff, "1", "no")
		e.svc.Comment(ctx, e.globexC, "1", "peek")

		ds, _, err := e.lic.WebhookDeliveries(ctx, e.acme, acmeHook.ID, "", 50)
		if err != nil {
			t.Fatal(err)
		}
		var types []string
		for i := len(ds) - 1; i >= 0; i-- { // oldest first
			types = append(types, ds[i].EventType)
			if err := e.lic.DeliverWebhook(ctx, ds[i].ID, false); err != nil {
				t.Fatalf("deliver %s: %v", ds[i].EventType, err)
			}
		}
		want := []string{webhooks.EventTicketOpened, webhooks.EventTicketCommented, webhooks.EventTicketApproved}
		if !slices.Equal(types, want) {
			t.Errorf("acme's deliveries = %q, want %q", types, want)
		}
		for _, w := range []struct{ tenant, hook string }{{e.acme, licOnly.ID}, {e.globex, globexHook.ID}} {
			ds, _, err := e.lic.WebhookDeliveries(ctx, w.tenant, w.hook, "", 50)
			if err != nil {
				t.Fatal(err)
			}
			if w.tenant == e.acme && len(ds) != 0 {
				t.Errorf("the license.activated endpoint got %d deliveries, want none", len(ds))
			}
			if w.tenant == e.globex && (len(ds) != 1 || ds[0].EventType != webhooks.EventTicketOpened) {
				t.Errorf("globex's deliveries = %+v, want its own opening only", ds)
			}
		}

		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.bad) > 0 || len(sink.events) != 3 {
			t.Fatalf("sink: %d events, refused %q", len(sink.events), sink.bad)
		}
		opened, commented, approved := sink.events[0], sink.events[1], sink.events[2]
		if opened.Data.TicketID != d.ID || opened.Data.TicketNumber != 1 || opened.Data.TenantID != e.acme ||
			opened.Data.Subject != "Latest audit report" || opened.Data.Message == "" || opened.Data.Actor != "staff-client" ||
			!slices.Equal(opened.Data.Products, []string{"agent", "app"}) || opened.Data.Status != reports.TicketOpen {
			t.Errorf("ticket.opened data = %+v", opened.Data)
		}
		if commented.Data.Message != "Thanks!" || commented.Data.Actor != "acme-client" {
			t.Errorf("ticket.commented data = %+v", commented.Data)
		}
		if approved.Data.Status != reports.TicketApproved || approved.Data.Release != "2.0.1" || approved.Data.Actor != "staff-client" {
			t.Errorf("ticket.approved data = %+v", approved.Data)
		}
	})
}
