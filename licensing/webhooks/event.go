package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// The licensing event types.
const (
	// EventActivated: a seat was taken (a new activation). Data: tenant,
	// product, entitlement, activation and seat IDs.
	EventActivated = "license.activated"
	// EventDeactivated: a seat was freed, by the client (reason
	// "deactivated") or because its lease ran out without a refresh
	// (reason "lease_expired").
	EventDeactivated = "license.deactivated"
	// EventSeatsExhausted: an activation took the entitlement's last free
	// seat; the next new seat will be refused with NO_SEATS until one is
	// freed. Data: seats and active_seats.
	EventSeatsExhausted = "license.seats_exhausted"
	// EventEntitlementExpiring: the entitlement expires within the
	// configured window (sent once per entitlement and expiry date).
	// Data: expires_at.
	EventEntitlementExpiring = "license.entitlement_expiring"
)

// The support ticket event types (package reports), sent to the ticket's
// tenant through the same endpoints. Data: ticket_id, ticket_number,
// status (after the change), products, actor (the OAuth client that made
// the change, or "system").
const (
	// EventTicketOpened: a ticket was opened, by the tenant or by staff on
	// its behalf. Data: subject and message too.
	EventTicketOpened = "ticket.opened"
	// EventTicketCommented: a comment was added. Data: message.
	EventTicketCommented = "ticket.commented"
	// EventTicketApproved: the ticket was approved, by staff or by the
	// auto-approval policy (actor "system"). Data: release, when one was
	// named.
	EventTicketApproved = "ticket.approved"
	// EventTicketRejected: the ticket was rejected. Data: reason.
	EventTicketRejected = "ticket.rejected"
)

// The secure link event types (package reports, links.go), sent to the
// ticket's tenant through the same endpoints. Data: ticket_id,
// ticket_number, link_id, product_id, version, bundle_sha256, status (the
// link's, after the change), expires_at, max_downloads, downloads_left,
// actor.
const (
	// EventReportLinkCreated: a link to a report bundle was made (by an
	// approval, or by staff reissuing one: reason "reissued"). Data:
	// token and url too: the only place besides the approval's answer
	// where the link's token appears; Vigil keeps it sealed until the
	// event is delivered.
	EventReportLinkCreated = "report_link.created"
	// EventReportLinkViewed: the link's landing page was shown (this uses
	// no download).
	EventReportLinkViewed = "report_link.viewed"
	// EventReportLinkDownloaded: a download of the bundle started (it is
	// counted once however it is split into ranges).
	EventReportLinkDownloaded = "report_link.downloaded"
	// EventReportLinkRevoked: staff revoked the link, or reissued it
	// (reason "reissued"); it no longer works.
	EventReportLinkRevoked = "report_link.revoked"
	// EventReportLinkExpired: the link reached its expiry.
	EventReportLinkExpired = "report_link.expired"
)

// EventTypes lists every event type, for validation and documentation.
var EventTypes = []string{EventActivated, EventDeactivated, EventSeatsExhausted, EventEntitlementExpiring,
	EventTicketOpened, EventTicketCommented, EventTicketApproved, EventTicketRejected,
	EventReportLinkCreated, EventReportLinkViewed, EventReportLinkDownloaded, EventReportLinkRevoked, EventReportLinkExpired}

// Reasons of EventDeactivated.
const (
	ReasonDeactivated  = "deactivated"
	ReasonLeaseExpired = "lease_expired"
)

// Event is the payload of a webhook, as Standard Webhooks recommends:
// {"type", "timestamp", "data"}. It carries identifiers, and a ticket's
// own text, only: never an activation code, a token or a fingerprint,
// but for the one event that hands the tenant its report link
// (report_link.created: Data.Token and Data.URL).
type Event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is the data of an event; which fields are set depends on the type.
type Data struct {
	TenantID      string    `json:"tenant_id"`
	ProductID     string    `json:"product_id,omitempty"`
	EntitlementID string    `json:"entitlement_id,omitempty"`
	ActivationID  string    `json:"activation_id,omitempty"`
	SeatID        string    `json:"seat_id,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	Seats         int       `json:"seats,omitempty"`
	ActiveSeats   int       `json:"active_seats,omitempty"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`

	// Support tickets (ticket.*). Reason above is a rejection's reason.
	TicketID     string   `json:"ticket_id,omitempty"`
	TicketNumber int64    `json:"ticket_number,omitempty"`
	Status       string   `json:"status,omitempty"`
	Products     []string `json:"products,omitempty"`
	Actor        string   `json:"actor,omitempty"`
	Subject      string   `json:"subject,omitempty"`
	Message      string   `json:"message,omitempty"`
	Release      string   `json:"release,omitempty"`

	// Secure links to report bundles (report_link.*). TicketID,
	// TicketNumber, ProductID, Actor and Reason above are set too; Status
	// is the link's (active, expired, revoked, used_up) and ExpiresAt its
	// expiry. Token and URL are set in report_link.created only: Vigil
	// stores such an event sealed (HasSecret).
	LinkID        string `json:"link_id,omitempty"`
	Version       string `json:"version,omitempty"`
	BundleSHA256  string `json:"bundle_sha256,omitempty"`
	MaxDownloads  int    `json:"max_downloads,omitempty"`
	DownloadsLeft *int   `json:"downloads_left,omitempty"`
	Token         string `json:"token,omitempty"`
	URL           string `json:"url,omitempty"`
}

// HasSecret reports whether the data carries what is shown once (a
// link's token): such an event is kept sealed until it is sent.
func (d Data) HasSecret() bool { return d.Token != "" || d.URL != "" }

// Outcome is what an attempt's answer means for the delivery.
type Outcome string

const (
	// Delivered: a 2xx answer.
	Delivered Outcome = "delivered"
	// Failed: anything else but 410 (no answer, a timeout, 3xx, 4xx, 5xx):
	// try again later.
	Failed Outcome = "failed"
	// Gone: 410 Gone, the receiver wants no more webhooks: disable the
	// endpoint.
	Gone Outcome = "gone"
)

// MaxResponseRead bounds how much of an answer's body Send reads (and
// discards), so that a hostile receiver cannot make it read forever.
const MaxResponseRead = 64 << 10

// DefaultTimeout is the request timeout of NewHTTPClient's default (the
// spec recommends 15 to 30 s).
const DefaultTimeout = 15 * time.Second

// NewHTTPClient returns a client for deliveries: a request timeout, and
// no redirects followed (a 3xx is a failed attempt, as the spec says).
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Result is the outcome of one attempt.
type Result struct {
	Outcome Outcome
	// Status is the answer's HTTP status, 0 when there was none.
	Status int
	// Error says why an attempt failed without an answer, or names the
	// status; it never holds the URL (which may carry a token) or a key.
	Error    string
	Duration time.Duration
}

// Send makes one attempt: it POSTs payload to endpoint, signed for now
// with keys, and classifies the answer.
func Send(ctx context.Context, client *http.Client, endpoint, msgID string, now time.Time, payload []byte, keys Keys) Result {
	h, err := Headers(msgID, now, payload, keys)
	if err != nil {
		return Result{Outcome: Failed, Error: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return Result{Outcome: Failed, Error: "the endpoint URL is not valid"}
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Vigil-Webhooks/1")
	start := time.Now()
	resp, err := client.Do(req)
	d := time.Since(start)
	if err != nil {
		return Result{Outcome: Failed, Error: transportError(err), Duration: d}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseRead))
	resp.Body.Close()
	r := Result{Status: resp.StatusCode, Duration: d}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299:
		r.Outcome = Delivered
	case resp.StatusCode == http.StatusGone:
		r.Outcome, r.Error = Gone, "the endpoint answered 410 Gone: disabled"
	default:
		r.Outcome, r.Error = Failed, fmt.Sprintf("the endpoint answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return r
}

// transportError describes a failed request without its URL.
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "no answer within the request timeout"
		}
		err = ue.Err
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return "connection failed: " + ne.Op + ": " + errText(ne.Err)
	}
	return "request failed: " + errText(err)
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
