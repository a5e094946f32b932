package reports

// Secure links: how a customer receives an audit report bundle.
//
// A link is bound to a ticket, the ticket's tenant and one stored bundle
// (Bundle) by its SHA-256: a bundle whose digest is no longer the one the
// link was made for is not served. Its token (256 random bits, base64url)
// is shown once, to whoever made the link (the approval's answer, a
// reissue's) and to the tenant in its report_link.created webhook; Vigil
// keeps only HMAC-SHA256 of it, under a key derived from the
// installation's seal key (which lives outside the database), and finds
// the link by that keyed hash. A copy of the database alone opens no
// link.
//
// The link's landing page (View) shows what the bundle holds and uses no
// download: mail scanners that follow links do not burn one. A download
// (Download) counts once per download, however it is split into ranges:
// a request that asks for the bundle's first byte (no Range, or a Range
// from byte 0) starts a download and counts it; that opens a download
// grant for the link and the client's address, which stays open while
// the client keeps asking, until DownloadGrantIdle passes without a
// request. A request for a later part of the bundle (a resume, another
// segment of a download manager) is served under an open grant without
// counting, and counts as a new download only when no grant is open.
// Expired and revoked links serve nothing, not even a resume; a link
// whose downloads are used up still lets an open grant finish.
//
// Every change and every access is in the ticket's history (TicketEvent:
// link_created, link_viewed, link_downloaded, link_revoked, link_expired,
// link_reissued), written with the tenant's report_link.* webhook event
// in one transaction; every request a link serves or refuses is in its
// access log (ListAccess).

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/internal/seal"
	"github.com/vigil-sec/vigil/licensing"
	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// infoLinkTokens is the HKDF-SHA256 label of the key that hashes link
// tokens, derived from the installation's seal key.
const infoLinkTokens = "vigil/reports/hash/link-tokens" // #nosec G101 -- an HKDF label, not a secret

// Limits and defaults of links.
const (
	DefaultLinkExpiry = 7 * 24 * time.Hour
	MaxLinkExpiry     = 30 * 24 * time.Hour
	MinLinkExpiry     = time.Minute
	// DefaultLinkDownloads is a link's download limit unless one is given,
	// MaxLinkDownloads the highest allowed.
	DefaultLinkDownloads = 5
	MaxLinkDownloads     = 100
	// DownloadGrantIdle is how long a download grant stays open after the
	// last request made under it (see the package comment).
	DownloadGrantIdle = time.Hour
	// TokenBytes is the randomness of a token; TokenLen its length in
	// base64url without padding.
	TokenBytes = 32
	TokenLen   = 43
	// maxTokenInput bounds what is hashed of a token someone sends.
	maxTokenInput = 128
	// maxUserAgent bounds the user agent kept in the access log, in bytes;
	// maxRangeLog the Range header.
	maxUserAgent = 512
	maxRangeLog  = 200
	// expireBatch is how many due links ExpireDue records per query.
	expireBatch = 100
)

// Statuses of a link, computed when it is read.
const (
	LinkActive  = "active"
	LinkExpired = "expired"
	LinkRevoked = "revoked"
	LinkUsedUp  = "used_up"
)

// Types of the links' events in a ticket's history.
const (
	EventLinkCreated    = "link_created"
	EventLinkViewed     = "link_viewed"
	EventLinkDownloaded = "link_downloaded"
	EventLinkRevoked    = "link_revoked"
	EventLinkExpired    = "link_expired"
	EventLinkReissued   = "link_reissued"
)

// LinkHolder is the actor of views and downloads: whoever holds the link
// (the history's body names the client address).
const LinkHolder = "link-holder"

// ReasonReissued is the revocation reason of a link replaced by a new one.
const ReasonReissued = "reissued"

// Kinds of access (LinkAccess.Kind).
const (
	AccessView     = "view"
	AccessDownload = "download"
)

// linkWebhooks are the webhook event types of the history's link events
// (a reissue sends report_link.revoked and report_link.created).
var linkWebhooks = map[string]string{
	EventLinkCreated:    webhooks.EventReportLinkCreated,
	EventLinkViewed:     webhooks.EventReportLinkViewed,
	EventLinkDownloaded: webhooks.EventReportLinkDownloaded,
	EventLinkRevoked:    webhooks.EventReportLinkRevoked,
	EventLinkExpired:    webhooks.EventReportLinkExpired,
}

// Errors of links, besides the package's sentinels.
var (
	// ErrGone is a link that no longer serves: a *LinkGoneError says why.
	ErrGone = errors.New("gone")
	// ErrBundleChanged is a link whose bundle no longer has the digest the
	// link was made for, or is no longer stored: it serves nothing.
	ErrBundleChanged = errors.New("the report bundle changed since the link was made")
	// ErrBundlesUnavailable: no BundleReader was configured.
	ErrBundlesUnavailable = errors.New("bundles are not configured")
	// ErrUnsatisfiable is a download request for no part of the bundle
	// (HTTP's 416): the Classifier refused it. It counts no download.
	ErrUnsatisfiable = errors.New("the range asked for is not in the bundle")
	// errLinkNotFound is every token that names no link, malformed or not.
	errLinkNotFound = fmt.Errorf("link: %w", ErrNotFound)
)

// LinkGoneError is a link that no longer serves, and why: LinkExpired,
// LinkRevoked or LinkUsedUp. It is an ErrGone.
type LinkGoneError struct {
	LinkID string
	Reason string
}

func (e *LinkGoneError) Error() string { return fmt.Sprintf("link %s is %s", e.LinkID, e.Reason) }

// Is makes a LinkGoneError an ErrGone.
func (e *LinkGoneError) Is(target error) bool { return target == ErrGone }

// Link is a secure link as the API shows it (never with its token).
type Link struct {
	ID           string `json:"id"`
	TicketID     string `json:"ticket_id"`
	TicketNumber int64  `json:"ticket_number"`
	TenantID     string `json:"tenant_id"`
	BundleID     string `json:"bundle_id"`
	BundleSHA256 string `json:"bundle_sha256"`
	ProductID    string `json:"product_id"`
	Version      string `json:"version"`
	// Status is LinkActive, LinkExpired, LinkRevoked or LinkUsedUp.
	Status        string     `json:"status"`
	ExpiresAt     time.Time  `json:"expires_at"`
	MaxDownloads  int        `json:"max_downloads"`
	Downloads     int        `json:"downloads"`
	DownloadsLeft int        `json:"downloads_left"`
	CreatedBy     string     `json:"created_by"`
	CreatedAt     time.Time  `json:"created_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	RevokedBy     string     `json:"revoked_by,omitempty"`
	RevokeReason  string     `json:"revoke_reason,omitempty"`
	// Replaces is the link this one was reissued from; ReplacedBy the
	// link that replaced this one.
	Replaces   string `json:"replaces,omitempty"`
	ReplacedBy string `json:"replaced_by,omitempty"`
}

// StoredLink is a link as the store keeps it: TokenHash is the keyed
// hash of its token; ExpiredAt is when its expiry was recorded in the
// ticket's history (zero until then).
type StoredLink struct {
	ID           string
	TokenHash    string
	TicketID     string
	TicketNumber int64
	TenantID     string
	BundleID     string
	BundleSHA256 string
	ProductID    string
	Version      string
	ExpiresAt    time.Time
	MaxDownloads int
	Downloads    int
	CreatedBy    string
	CreatedAt    time.Time
	RevokedAt    time.Time
	RevokedBy    string
	RevokeReason string
	ExpiredAt    time.Time
	Replaces     string
	ReplacedBy   string
}

// Status is the link's status at now.
func (l StoredLink) Status(now time.Time) string {
	switch {
	case !l.RevokedAt.IsZero():
		return LinkRevoked
	case !now.Before(l.ExpiresAt):
		return LinkExpired
	case l.Downloads >= l.MaxDownloads:
		return LinkUsedUp
	}
	return LinkActive
}

// Link is the link as the API shows it at now.
func (l StoredLink) Link(now time.Time) Link {
	out := Link{
		ID: l.ID, TicketID: l.TicketID, TicketNumber: l.TicketNumber, TenantID: l.TenantID, BundleID: l.BundleID,
		BundleSHA256: l.BundleSHA256, ProductID: l.ProductID, Version: l.Version, Status: l.Status(now),
		ExpiresAt: l.ExpiresAt, MaxDownloads: l.MaxDownloads, Downloads: l.Downloads,
		DownloadsLeft: max(l.MaxDownloads-l.Downloads, 0), CreatedBy: l.CreatedBy, CreatedAt: l.CreatedAt,
		RevokedBy: l.RevokedBy, RevokeReason: l.RevokeReason, Replaces: l.Replaces, ReplacedBy: l.ReplacedBy,
	}
	if !l.RevokedAt.IsZero() {
		t := l.RevokedAt
		out.RevokedAt = &t
	}
	return out
}

// LinkAccess is one request a link served or refused: its access log.
type LinkAccess struct {
	ID     string    `json:"id"`
	LinkID string    `json:"link_id"`
	At     time.Time `json:"at"`
	// Kind is AccessView (the landing page) or AccessDownload.
	Kind          string `json:"kind"`
	ClientAddress string `json:"client_address"`
	UserAgent     string `json:"user_agent"`
	// Range is the Range header of a download, as sent (cut short).
	Range string `json:"range,omitempty"`
	// Counted: the request started a download, which was counted.
	Counted bool  `json:"counted"`
	Status  int   `json:"status"`
	Bytes   int64 `json:"bytes"`
}

// LinkOptions are a new link's expiry and download limit; zero values
// mean the defaults (DefaultLinkExpiry, DefaultLinkDownloads).
type LinkOptions struct {
	Expiry       time.Duration
	MaxDownloads int
}

// NewLink is the input of Create.
type NewLink struct {
	// Ticket is the ticket's number or ID; it must be approved.
	Ticket string
	// BundleID is the stored bundle the link serves: built for that
	// ticket (its tenant, its number) and one of its products.
	BundleID string
	LinkOptions
}

// LinkQuery selects a page of links, oldest first: those of a ticket
// (Ticket, its number or ID) or of a tenant (TenantID; staff may leave
// both empty for every link).
type LinkQuery struct {
	Ticket   string
	TenantID string
	Page
}

// StoredLinkQuery is what the store lists: by ticket ID or tenant ("" for
// any).
type StoredLinkQuery struct {
	TicketID string
	TenantID string
	Page
}

// Visitor is who sends a request to a link: the client's address (as the
// server reads it, behind trusted proxies) and its user agent.
type Visitor struct {
	Address   string
	UserAgent string
}

// DownloadRequest says what a download request asks for.
type DownloadRequest struct {
	// Resume: the request asks only for bytes after the first (a Range
	// whose lowest byte is not 0): it goes on with a download rather than
	// starting one.
	Resume bool
	// Partial: the request asks for ranges (it will be answered 206).
	Partial bool
	// Range is the Range header as sent, for the access log.
	Range string
}

// LinkView is what the landing page shows: the link and its bundle.
type LinkView struct {
	Link   Link
	Bundle Bundle
	// Access is the view's entry of the access log (FinishAccess).
	Access string
}

// Download is a download the service agreed to serve: the link, the
// bundle and its content, open. The caller serves Content and then calls
// FinishDownload, which closes it.
type Download struct {
	Link    Link
	Bundle  Bundle
	Content BundleContent
	// Counted: this request started a download, which was counted.
	Counted bool
	access  string
}

// LinkStore is what the LinkService needs from its database;
// internal/store implements it. Reads of a missing row return an error
// that wraps ErrNotFound.
type LinkStore interface {
	// InLinkTx runs fn in a write transaction, committed if fn returns
	// nil and rolled back otherwise.
	InLinkTx(ctx context.Context, fn func(LinkTx) error) error
	GetTicket(ctx context.Context, id string) (Ticket, error)
	TicketByNumber(ctx context.Context, number int64) (Ticket, error)
	// LinkByTokenHash returns the link whose token has the keyed hash.
	LinkByTokenHash(ctx context.Context, tokenHash string) (StoredLink, error)
	GetLink(ctx context.Context, id string) (StoredLink, error)
	// ListLinks returns one page of the links q selects, oldest first,
	// and the cursor of the next page ("" on the last).
	ListLinks(ctx context.Context, q StoredLinkQuery) ([]StoredLink, string, error)
	// ListLinkAccess returns one page of the link's access log, oldest
	// first.
	ListLinkAccess(ctx context.Context, linkID string, p Page) ([]LinkAccess, string, error)
	// DueLinks returns up to limit links whose expiry passed at or before
	// now, not revoked, whose expiry is not recorded yet.
	DueLinks(ctx context.Context, now time.Time, limit int) ([]StoredLink, error)
	// FinishLinkAccess sets the status and bytes of an access log entry
	// once its answer is sent.
	FinishLinkAccess(ctx context.Context, id string, status int, bytes int64) error
}

// LinkTx is a write transaction over the links: a ticket's transaction
// (TicketTx: its history and webhook events) with the links' writes, so
// that a link can be made in the transaction of a ticket's approval.
type LinkTx interface {
	TicketTx
	// InsertLink stores a new link; its token hash must be unique.
	InsertLink(ctx context.Context, l StoredLink) error
	// LockLink reads the link and locks it until the transaction ends.
	LockLink(ctx context.Context, id string) (StoredLink, error)
	// UpdateLink sets the link's downloads, revocation, recorded expiry
	// and replacement.
	UpdateLink(ctx context.Context, l StoredLink) error
	// InsertLinkAccess adds an entry to the link's access log.
	InsertLinkAccess(ctx context.Context, a LinkAccess) error
	// DownloadGranted reports whether the link served a download request
	// (200 or 206) to the client address at or after since: an open
	// download grant.
	DownloadGranted(ctx context.Context, linkID, clientAddress string, since time.Time) (bool, error)
}

// LinkConfig configures a LinkService. Zero fields mean defaults.
type LinkConfig struct {
	// BaseURL is the server's public URL (https://vigil.example.com); a
	// link's URL is BaseURL/r/TOKEN. Empty: links are given as tokens
	// only, without a URL.
	BaseURL string
	// Logger receives the service's messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// LinkService makes, serves and revokes secure links. It is safe for
// concurrent use.
type LinkService struct {
	db      LinkStore
	bundles BundleReader
	lic     *licensing.Service
	key     []byte // HMAC key of the tokens
	dummy   string // the hash an unknown token is compared with
	base    string
	log     *slog.Logger
	now     func() time.Time
}

// NewLinkService returns the service on db (internal/store's DB
// implements LinkStore), serving the bundles bundles reads (nil: the
// calls that need a bundle fail with ErrBundlesUnavailable), announcing
// through lic's webhooks, with token hashes keyed by a key derived from
// the installation's seal key (seal.KeySize bytes).
func NewLinkService(db LinkStore, bundles BundleReader, lic *licensing.Service, sealKey []byte, cfg LinkConfig) (*LinkService, error) {
	switch {
	case db == nil || lic == nil:
		return nil, errors.New("reports: a link service needs a store and the licensing service")
	case len(sealKey) != seal.KeySize:
		return nil, fmt.Errorf("reports: seal key is %d bytes, want %d", len(sealKey), seal.KeySize)
	}
	key, err := hkdf.Key(sha256.New, sealKey, nil, infoLinkTokens, 32)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	s := &LinkService{db: db, bundles: bundles, lic: lic, key: key, base: strings.TrimRight(cfg.BaseURL, "/"), log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.dummy = s.hash("not a token")
	return s, nil
}

// URL is the link's URL for a token, "" without a BaseURL.
func (s *LinkService) URL(token string) string {
	if s.base == "" {
		return ""
	}
	return s.base + "/r/" + token
}

// hash is the keyed hash of a token, as stored.
func (s *LinkService) hash(token string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newToken makes a token and its hash.
func (s *LinkService) newToken() (token, hash string) {
	b := make([]byte, TokenBytes)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, s.hash(token)
}

// wellFormed reports whether s reads as a token: TokenLen characters of
// the base64url alphabet that decode to TokenBytes bytes.
func wellFormed(token string) bool {
	if len(token) != TokenLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil && len(b) == TokenBytes
}

// lookup finds the link of a token. Every token, well-formed or not,
// known or not, costs the same work: its keyed hash (of at most
// maxTokenInput bytes), one lookup by that hash, and a constant-time
// comparison with the stored hash or a dummy one; only then is the
// answer chosen. A lookup by a keyed hash leaks nothing of the token
// through timing: an attacker cannot aim at a prefix of the stored hash.
func (s *LinkService) lookup(ctx context.Context, token string) (StoredLink, error) {
	if len(token) > maxTokenInput {
		token = token[:maxTokenInput]
	}
	h := s.hash(token)
	l, err := s.db.LinkByTokenHash(ctx, h)
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return StoredLink{}, fmt.Errorf("reports: find link: %w", err)
	}
	stored := s.dummy
	if found {
		stored = l.TokenHash
	}
	match := subtle.ConstantTimeCompare([]byte(stored), []byte(h)) == 1
	if !(found && match && wellFormed(token)) {
		return StoredLink{}, errLinkNotFound
	}
	return l, nil
}

// CheckLinkOptions checks a link's expiry and download limit and fills in
// the defaults. Errors wrap ErrInvalid and name the bad value.
func CheckLinkOptions(o LinkOptions) (LinkOptions, error) {
	switch {
	case o.Expiry == 0:
		o.Expiry = DefaultLinkExpiry
	case o.Expiry < MinLinkExpiry:
		return LinkOptions{}, fmt.Errorf("%w: expiry %s: at least %s", ErrInvalid, o.Expiry, MinLinkExpiry)
	case o.Expiry > MaxLinkExpiry:
		return LinkOptions{}, fmt.Errorf("%w: expiry %s (%s): at most %s (%d days)", ErrInvalid, o.Expiry, days(o.Expiry), MaxLinkExpiry, MaxLinkExpiry/(24*time.Hour))
	}
	switch {
	case o.MaxDownloads == 0:
		o.MaxDownloads = DefaultLinkDownloads
	case o.MaxDownloads < 0 || o.MaxDownloads > MaxLinkDownloads:
		return LinkOptions{}, fmt.Errorf("%w: max_downloads %d: want 1 to %d", ErrInvalid, o.MaxDownloads, MaxLinkDownloads)
	}
	return o, nil
}

// days says a duration in days, for messages.
func days(d time.Duration) string {
	return fmt.Sprintf("%.4g days", d.Hours()/24)
}

// findTicket returns the ticket a reference names, if the actor may see
// it (the same ErrNotFound for another tenant's ticket as for none).
func (s *LinkService) findTicket(ctx context.Context, a Actor, ref string) (Ticket, error) {
	if !a.bound() && !a.staff() {
		return Ticket{}, errUnbound
	}
	r, err := ParseTicketRef(ref)
	if err != nil {
		return Ticket{}, err
	}
	var t Ticket
	if r.Number > 0 {
		t, err = s.db.TicketByNumber(ctx, r.Number)
	} else {
		t, err = s.db.GetTicket(ctx, r.ID)
	}
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && a.bound() && t.TenantID != a.TenantID):
		return Ticket{}, fmt.Errorf("ticket %s: %w", ref, ErrNotFound)
	case err != nil:
		return Ticket{}, fmt.Errorf("reports: ticket %s: %w", ref, err)
	}
	return t, nil
}

// findLink returns the link, if the actor may see it.
func (s *LinkService) findLink(ctx context.Context, a Actor, id string) (StoredLink, error) {
	if !a.bound() && !a.staff() {
		return StoredLink{}, errUnbound
	}
	if _, err := uuid.Parse(id); err != nil {
		return StoredLink{}, fmt.Errorf("link %q: %w", cut(id, 64), ErrNotFound)
	}
	l, err := s.db.GetLink(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound) || (err == nil && a.bound() && l.TenantID != a.TenantID):
		return StoredLink{}, fmt.Errorf("link %s: %w", id, ErrNotFound)
	case err != nil:
		return StoredLink{}, fmt.Errorf("reports: link %s: %w", id, err)
	}
	return l, nil
}

// bundle reads a bundle's record. A bundle that is no longer stored is
// ErrBundleChanged.
func (s *LinkService) bundle(ctx context.Context, id string) (Bundle, error) {
	if s.bundles == nil {
		return Bundle{}, ErrBundlesUnavailable
	}
	b, err := s.bundles.Bundle(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Bundle{}, fmt.Errorf("%w: bundle %s is no longer stored", ErrBundleChanged, id)
	}
	if err != nil {
		return Bundle{}, fmt.Errorf("reports: bundle %s: %w", id, err)
	}
	return b, nil
}

// checkBinding refuses a link from ticket t to bundle b unless b was built
// for t (its tenant, its number) and one of its products, and t is
// approved.
func checkBinding(t Ticket, b Bundle) error {
	switch {
	case t.Status != TicketApproved:
		return fmt.Errorf("%w: ticket %d is %s: links are made for approved tickets", ErrConflict, t.Number, t.Status)
	case b.TenantID != t.TenantID:
		return fmt.Errorf("%w: bundle %s was built for tenant %q, not the ticket's (%q)", ErrInvalid, b.ID, b.TenantID, t.TenantID)
	case b.TicketID != t.ID:
		return fmt.Errorf("%w: bundle %s was built for another ticket than %d", ErrInvalid, b.ID, t.Number)
	case !slices.Contains(t.Products, b.ProductID):
		return fmt.Errorf("%w: bundle %s is of product %q, which ticket %d does not ask for", ErrInvalid, b.ID, b.ProductID, t.Number)
	case !validSHA256(b.SHA256):
		return fmt.Errorf("reports: bundle %s has no SHA-256 digest", b.ID)
	}
	return nil
}

func validSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && strings.ToLower(s) == s
}

// Create makes a link to a stored bundle for an approved ticket (staff
// only) and returns it with its token, which is shown this once (and
// sent to the tenant in report_link.created). Errors wrap ErrInvalid for
// bad options or a bundle not built for the ticket, ErrNotFound for an
// unknown ticket, ErrConflict for a ticket that is not approved,
// ErrForbidden for a caller that is not staff, and ErrBundlesUnavailable.
func (s *LinkService) Create(ctx context.Context, a Actor, nl NewLink) (Link, string, error) {
	if !a.staff() {
		return Link{}, "", errNotStaff
	}
	if s.bundles == nil {
		return Link{}, "", ErrBundlesUnavailable
	}
	o, err := CheckLinkOptions(nl.LinkOptions)
	if err != nil {
		return Link{}, "", err
	}
	t, err := s.findTicket(ctx, a, nl.Ticket)
	if err != nil {
		return Link{}, "", err
	}
	if err := checkIdentifier("bundle_id", nl.BundleID); err != nil {
		return Link{}, "", err
	}
	b, err := s.bundle(ctx, nl.BundleID)
	if errors.Is(err, ErrBundleChanged) {
		return Link{}, "", fmt.Errorf("%w: bundle_id %q: no such bundle", ErrInvalid, nl.BundleID)
	}
	if err != nil {
		return Link{}, "", err
	}
	var (
		l     Link
		token string
	)
	out := s.lic.Outbox()
	err = s.db.InLinkTx(ctx, func(tx LinkTx) error {
		var err error
		l, token, err = s.CreateIn(ctx, tx, out, a.ClientID, t.ID, b, o)
		return err
	})
	if err != nil {
		return Link{}, "", wrapTx("create link", err)
	}
	out.Queue(ctx)
	return l, token, nil
}

// CreateIn makes a link in tx, a transaction of the caller's (a ticket's
// approval: internal/store's ticket transactions are LinkTxs), and
// returns it with its token, shown this once. The ticket, which tx locks,
// must be approved by then, and b (read before the transaction) built for
// it; o must have passed CheckLinkOptions. The caller queues out once tx
// commits. actor is the OAuth client, or SystemActor.
func (s *LinkService) CreateIn(ctx context.Context, tx LinkTx, out *licensing.Outbox, actor, ticketID string, b Bundle, o LinkOptions) (Link, string, error) {
	t, err := tx.LockTicket(ctx, ticketID)
	if err != nil {
		return Link{}, "", err
	}
	if err := checkBinding(t, b); err != nil {
		return Link{}, "", err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	l, token, err := s.insert(ctx, tx, t, b, o, actor, "", now)
	if err != nil {
		return Link{}, "", err
	}
	body := createdBody(l)
	if err := s.record(ctx, tx, out, t, l, EventLinkCreated, actor, body, now, func(d *webhooks.Data) {
		d.Token, d.URL = token, s.URL(token)
	}); err != nil {
		return Link{}, "", err
	}
	s.log.InfoContext(ctx, "link created", slog.String("link_id", l.ID), slog.Int64("ticket", t.Number),
		slog.String("bundle_id", b.ID), slog.String("by", actor), slog.Time("expires_at", l.ExpiresAt))
	return l.Link(now), token, nil
}

// insert stores a new link to b for t.
func (s *LinkService) insert(ctx context.Context, tx LinkTx, t Ticket, b Bundle, o LinkOptions, actor, replaces string, now time.Time) (StoredLink, string, error) {
	token, hash := s.newToken()
	l := StoredLink{
		ID: uuid.Must(uuid.NewV7()).String(), TokenHash: hash, TicketID: t.ID, TicketNumber: t.Number, TenantID: t.TenantID,
		BundleID: b.ID, BundleSHA256: b.SHA256, ProductID: b.ProductID, Version: b.Version,
		ExpiresAt: now.Add(o.Expiry), MaxDownloads: o.MaxDownloads, CreatedBy: actor, CreatedAt: now, Replaces: replaces,
	}
	if err := tx.InsertLink(ctx, l); err != nil {
		return StoredLink{}, "", err
	}
	return l, token, nil
}

// Reissue replaces a link with a new one to the same bundle (staff only),
// with a new token, shown this once, and the options given (the defaults
// for zero values); the old link is revoked (reason "reissued") and
// stops working at once. A link is reissued once: reissue the new one
// after. The bundle must still have the link's digest (ErrBundleChanged).
func (s *LinkService) Reissue(ctx context.Context, a Actor, linkID string, o LinkOptions) (Link, string, error) {
	if !a.staff() {
		return Link{}, "", errNotStaff
	}
	if s.bundles == nil {
		return Link{}, "", ErrBundlesUnavailable
	}
	o, err := CheckLinkOptions(o)
	if err != nil {
		return Link{}, "", err
	}
	old, err := s.findLink(ctx, a, linkID)
	if err != nil {
		return Link{}, "", err
	}
	b, err := s.bundle(ctx, old.BundleID)
	if err != nil {
		return Link{}, "", err
	}
	if b.SHA256 != old.BundleSHA256 {
		return Link{}, "", fmt.Errorf("%w: link %s: its bundle %s no longer has the digest the link was made for; make a new link", ErrBundleChanged, old.ID, b.ID)
	}
	var (
		l     StoredLink
		token string
	)
	now := s.now().UTC().Truncate(time.Microsecond)
	out := s.lic.Outbox()
	err = s.db.InLinkTx(ctx, func(tx LinkTx) error {
		t, err := tx.LockTicket(ctx, old.TicketID)
		if err != nil {
			return err
		}
		cur, err := tx.LockLink(ctx, old.ID)
		if err != nil {
			return err
		}
		if cur.ReplacedBy != "" {
			return fmt.Errorf("%w: link %s was reissued already, as %s: reissue that one", ErrConflict, cur.ID, cur.ReplacedBy)
		}
		if l, token, err = s.insert(ctx, tx, t, b, o, a.ClientID, cur.ID, now); err != nil {
			return err
		}
		wasActive := cur.RevokedAt.IsZero()
		if wasActive {
			cur.RevokedAt, cur.RevokedBy, cur.RevokeReason = now, a.ClientID, ReasonReissued
		}
		cur.ReplacedBy = l.ID
		if err := tx.UpdateLink(ctx, cur); err != nil {
			return err
		}
		body := createdBody(l)
		body.Replaces = cur.ID
		if err := s.appendEvent(ctx, tx, t, EventLinkReissued, a.ClientID, body, now); err != nil {
			return err
		}
		if wasActive {
			if err := s.emit(ctx, tx, out, t, cur, webhooks.EventReportLinkRevoked, a.ClientID, now, func(d *webhooks.Data) { d.Reason = ReasonReissued }); err != nil {
				return err
			}
		}
		return s.emit(ctx, tx, out, t, l, webhooks.EventReportLinkCreated, a.ClientID, now, func(d *webhooks.Data) {
			d.Token, d.URL, d.Reason = token, s.URL(token), ReasonReissued
		})
	})
	if err != nil {
		return Link{}, "", wrapTx("reissue link", err)
	}
	out.Queue(ctx)
	s.log.InfoContext(ctx, "link reissued", slog.String("link_id", l.ID), slog.String("replaces", old.ID),
		slog.Int64("ticket", l.TicketNumber), slog.String("by", a.ClientID))
	return l.Link(now), token, nil
}

// Revoke revokes a link (staff only), with an optional reason the tenant
// reads: it stops working at once. Errors wrap ErrConflict for a link
// revoked already, ErrNotFound, ErrInvalid for a bad reason.
func (s *LinkService) Revoke(ctx context.Context, a Actor, linkID, reason string) (Link, error) {
	if !a.staff() {
		return Link{}, errNotStaff
	}
	if strings.TrimSpace(reason) != "" {
		var err error
		if reason, err = checkText("reason", reason, MaxReason, true); err != nil {
			return Link{}, err
		}
	} else {
		reason = ""
	}
	old, err := s.findLink(ctx, a, linkID)
	if err != nil {
		return Link{}, err
	}
	var l StoredLink
	now := s.now().UTC().Truncate(time.Microsecond)
	out := s.lic.Outbox()
	err = s.db.InLinkTx(ctx, func(tx LinkTx) error {
		t, err := tx.LockTicket(ctx, old.TicketID)
		if err != nil {
			return err
		}
		if l, err = tx.LockLink(ctx, old.ID); err != nil {
			return err
		}
		if !l.RevokedAt.IsZero() {
			return fmt.Errorf("%w: link %s is revoked already", ErrConflict, l.ID)
		}
		l.RevokedAt, l.RevokedBy, l.RevokeReason = now, a.ClientID, reason
		if err := tx.UpdateLink(ctx, l); err != nil {
			return err
		}
		return s.record(ctx, tx, out, t, l, EventLinkRevoked, a.ClientID, linkEventBody{LinkID: l.ID, Reason: reason}, now,
			func(d *webhooks.Data) { d.Reason = reason })
	})
	if err != nil {
		return Link{}, wrapTx("revoke link", err)
	}
	out.Queue(ctx)
	s.log.InfoContext(ctx, "link revoked", slog.String("link_id", l.ID), slog.Int64("ticket", l.TicketNumber), slog.String("by", a.ClientID))
	return l.Link(now), nil
}

// List returns one page of links, oldest first: a ticket's, a tenant's,
// or (staff) every one. A client bound to a tenant sees its tenant's
// links only (another tenant's ticket is ErrNotFound).
func (s *LinkService) List(ctx context.Context, a Actor, q LinkQuery) ([]Link, string, error) {
	sq := StoredLinkQuery{TenantID: q.TenantID, Page: q.Page}
	switch {
	case a.bound() && q.TenantID != "" && q.TenantID != a.TenantID:
		return nil, "", fmt.Errorf("%w: tenant_id: a client bound to a tenant lists its own tenant's links only", ErrInvalid)
	case a.bound():
		sq.TenantID = a.TenantID
	case !a.staff():
		return nil, "", errUnbound
	}
	if q.Limit < 0 || q.Limit > MaxPageLimit {
		return nil, "", fmt.Errorf("%w: limit %d: want 1 to %d", ErrInvalid, q.Limit, MaxPageLimit)
	}
	if q.Ticket != "" {
		t, err := s.findTicket(ctx, a, q.Ticket)
		if err != nil {
			return nil, "", err
		}
		sq.TicketID = t.ID
	}
	ls, next, err := s.db.ListLinks(ctx, sq)
	if errors.Is(err, ErrInvalid) {
		return nil, "", err // a bad cursor: the store's message names it
	}
	if err != nil {
		return nil, "", fmt.Errorf("reports: list links: %w", err)
	}
	now := s.now()
	out := make([]Link, len(ls))
	for i, l := range ls {
		out[i] = l.Link(now)
	}
	return out, next, nil
}

// Get returns a link, if the actor may see it.
func (s *LinkService) Get(ctx context.Context, a Actor, linkID string) (Link, error) {
	l, err := s.findLink(ctx, a, linkID)
	if err != nil {
		return Link{}, err
	}
	return l.Link(s.now()), nil
}

// ListAccess returns one page of a link's access log, oldest first, if
// the actor may see the link.
func (s *LinkService) ListAccess(ctx context.Context, a Actor, linkID string, p Page) ([]LinkAccess, string, error) {
	if p.Limit < 0 || p.Limit > MaxPageLimit {
		return nil, "", fmt.Errorf("%w: limit %d: want 1 to %d", ErrInvalid, p.Limit, MaxPageLimit)
	}
	l, err := s.findLink(ctx, a, linkID)
	if err != nil {
		return nil, "", err
	}
	as, next, err := s.db.ListLinkAccess(ctx, l.ID, p)
	if errors.Is(err, ErrInvalid) {
		return nil, "", err
	}
	if err != nil {
		return nil, "", fmt.Errorf("reports: link %s: access log: %w", l.ID, err)
	}
	return as, next, nil
}

// wrapTx wraps a transaction's error for logs, keeping the sentinels'
// texts for the callers that show them.
func wrapTx(what string, err error) error {
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) || errors.Is(err, ErrForbidden) || errors.Is(err, ErrGone) {
		return err
	}
	return fmt.Errorf("reports: %s: %w", what, err)
}

// linkEventBody is the body of the links' events in a ticket's history.
// It never holds the token.
type linkEventBody struct {
	LinkID        string     `json:"link_id"`
	Replaces      string     `json:"replaces,omitempty"` // link_reissued: the link it replaced
	ProductID     string     `json:"product_id,omitempty"`
	Version       string     `json:"version,omitempty"`
	BundleSHA256  string     `json:"bundle_sha256,omitempty"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	MaxDownloads  int        `json:"max_downloads,omitempty"`
	DownloadsLeft *int       `json:"downloads_left,omitempty"`
	ClientAddress string     `json:"client_address,omitempty"`
	Reason        string     `json:"reason,omitempty"`
}

func createdBody(l StoredLink) linkEventBody {
	exp := l.ExpiresAt
	return linkEventBody{LinkID: l.ID, ProductID: l.ProductID, Version: l.Version, BundleSHA256: l.BundleSHA256,
		ExpiresAt: &exp, MaxDownloads: l.MaxDownloads}
}

// record appends a link event to the ticket's history and announces it
// to the tenant, in tx; more sets what else the webhook says.
func (s *LinkService) record(ctx context.Context, tx LinkTx, out *licensing.Outbox, t Ticket, l StoredLink, typ, actor string, body linkEventBody, at time.Time, more func(*webhooks.Data)) error {
	if err := s.appendEvent(ctx, tx, t, typ, actor, body, at); err != nil {
		return err
	}
	return s.emit(ctx, tx, out, t, l, linkWebhooks[typ], actor, at, more)
}

func (s *LinkService) appendEvent(ctx context.Context, tx LinkTx, t Ticket, typ, actor string, body linkEventBody, at time.Time) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = tx.AppendTicketEvent(ctx, t.ID, TicketEvent{Type: typ, Actor: actor, Body: b, At: at})
	return err
}

// emit writes the link's webhook event of the type for the tenant.
func (s *LinkService) emit(ctx context.Context, tx LinkTx, out *licensing.Outbox, t Ticket, l StoredLink, typ, actor string, at time.Time, more func(*webhooks.Data)) error {
	left := max(l.MaxDownloads-l.Downloads, 0)
	d := webhooks.Data{
		TenantID: l.TenantID, TicketID: t.ID, TicketNumber: t.Number, ProductID: l.ProductID, Actor: actor,
		Status: l.Status(at), ExpiresAt: l.ExpiresAt.UTC(), LinkID: l.ID, Version: l.Version, BundleSHA256: l.BundleSHA256,
		MaxDownloads: l.MaxDownloads, DownloadsLeft: &left,
	}
	if more != nil {
		more(&d)
	}
	return out.Emit(ctx, tx, typ, d, at)
}

// cleanVisitor bounds and cleans what a client says of itself.
func cleanVisitor(v Visitor) Visitor {
	return Visitor{Address: cut(cleanLine(v.Address), 64), UserAgent: cut(cleanLine(v.UserAgent), maxUserAgent)}
}

// cleanLine makes s valid UTF-8 without control or bidirectional
// characters, for logs that people read.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return '?'
		}
		return r
	}, s)
}

// cut shortens s to at most n bytes, on a rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// checkIdentifier checks an identifier-like input.
func checkIdentifier(field, v string) error {
	if v == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalid, field)
	}
	if len(v) > 200 || strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) || !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s %q is not an identifier", ErrInvalid, field, cut(v, 64))
	}
	return nil
}
