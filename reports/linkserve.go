package reports

// Serving secure links: the landing page (View), downloads counted once
// however they are split into ranges (Download, the download grants),
// the access log, and the expiry of links (ExpireDue). See links.go.

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/licensing"
)

// View serves the landing page of the token's link: the link and its
// bundle's record. It uses no download; it is recorded in the access log
// and the ticket's history (link_viewed). Errors: ErrNotFound for a token
// that names no link (malformed or unknown alike), a *LinkGoneError
// (ErrGone) for a link expired, revoked or used up, ErrBundleChanged,
// ErrBundlesUnavailable. The caller finishes the access log entry
// (FinishAccess) once the page is sent.
func (s *LinkService) View(ctx context.Context, token string, v Visitor) (LinkView, error) {
	if s.bundles == nil {
		return LinkView{}, ErrBundlesUnavailable
	}
	sl, err := s.lookup(ctx, token)
	if err != nil {
		return LinkView{}, err
	}
	v = cleanVisitor(v)
	now := s.now().UTC().Truncate(time.Microsecond)
	acc := LinkAccess{ID: uuid.Must(uuid.NewV7()).String(), LinkID: sl.ID, At: now, Kind: AccessView, ClientAddress: v.Address, UserAgent: v.UserAgent}
	var b Bundle
	if sl.Status(now) == LinkActive { // a link gone says so, whatever became of its bundle
		if b, err = s.servable(ctx, sl); err != nil {
			return LinkView{}, s.refuse(ctx, sl, acc, err)
		}
	}
	var (
		l       StoredLink
		goneErr *LinkGoneError
	)
	out := s.lic.Outbox()
	err = s.db.InLinkTx(ctx, func(tx LinkTx) error {
		t, err := tx.LockTicket(ctx, sl.TicketID)
		if err != nil {
			return err
		}
		if l, err = tx.LockLink(ctx, sl.ID); err != nil {
			return err
		}
		if why := l.Status(now); why != LinkActive {
			goneErr, err = s.gone(ctx, tx, out, t, l, acc, why, now)
			return err
		}
		if b.ID == "" { // the link was gone before: it cannot be back
			return fmt.Errorf("reports: link %s is active, was gone", l.ID)
		}
		acc.Status = 200
		if err := tx.InsertLinkAccess(ctx, acc); err != nil {
			return err
		}
		return s.record(ctx, tx, out, t, l, EventLinkViewed, LinkHolder, linkEventBody{LinkID: l.ID, ClientAddress: v.Address}, now, nil)
	})
	if err != nil {
		return LinkView{}, wrapTx("view link", err)
	}
	out.Queue(ctx)
	if goneErr != nil {
		return LinkView{}, goneErr
	}
	return LinkView{Link: l.Link(now), Bundle: b, Access: acc.ID}, nil
}

// Classifier says what a download request asks for of the bundle (its
// Size and SHA256 decide how a Range reads), or why it cannot be served
// (ErrUnsatisfiable then wraps its error).
type Classifier func(b Bundle) (DownloadRequest, error)

// Download starts serving the token's link's bundle: it decides whether
// the request starts a download (and counts it) or goes on with one under
// an open grant (see the package comment), records it, and opens the
// bundle. Errors are those of View, and ErrUnsatisfiable; a link whose
// downloads are used up serves resumes under an open grant only. The
// caller serves Download.Content (http.ServeContent) and then calls
// FinishDownload.
func (s *LinkService) Download(ctx context.Context, token string, v Visitor, classify Classifier) (*Download, error) {
	if s.bundles == nil {
		return nil, ErrBundlesUnavailable
	}
	sl, err := s.lookup(ctx, token)
	if err != nil {
		return nil, err
	}
	v = cleanVisitor(v)
	now := s.now().UTC().Truncate(time.Microsecond)
	acc := LinkAccess{ID: uuid.Must(uuid.NewV7()).String(), LinkID: sl.ID, At: now, Kind: AccessDownload,
		ClientAddress: v.Address, UserAgent: v.UserAgent}
	var (
		b       Bundle
		req     DownloadRequest
		content BundleContent = closed{}
	)
	// An expired or revoked link says so, whatever became of its bundle,
	// and opens nothing; a used-up one may still serve an open grant.
	if st := sl.Status(now); st != LinkExpired && st != LinkRevoked {
		if b, err = s.servable(ctx, sl); err != nil {
			return nil, s.refuse(ctx, sl, acc, err)
		}
		req, err = classify(b)
		acc.Range = cut(cleanLine(req.Range), maxRangeLog)
		if err != nil {
			return nil, s.refuse(ctx, sl, acc, fmt.Errorf("%w: %w", ErrUnsatisfiable, err))
		}
		if content, err = s.open(ctx, b); err != nil {
			return nil, s.refuse(ctx, sl, acc, err)
		}
	}
	var (
		l       StoredLink
		goneErr *LinkGoneError
	)
	out := s.lic.Outbox()
	err = s.db.InLinkTx(ctx, func(tx LinkTx) error {
		t, err := tx.LockTicket(ctx, sl.TicketID)
		if err != nil {
			return err
		}
		if l, err = tx.LockLink(ctx, sl.ID); err != nil {
			return err
		}
		status := l.Status(now)
		if status == LinkRevoked || status == LinkExpired {
			goneErr, err = s.gone(ctx, tx, out, t, l, acc, status, now)
			return err
		}
		if b.ID == "" { // the link was gone before: it cannot be back
			return fmt.Errorf("reports: link %s is %s, was gone", l.ID, status)
		}
		acc.Counted = true
		if req.Resume {
			granted, err := tx.DownloadGranted(ctx, l.ID, v.Address, now.Add(-DownloadGrantIdle))
			if err != nil {
				return err
			}
			acc.Counted = !granted
		}
		if acc.Counted && status == LinkUsedUp {
			goneErr, err = s.gone(ctx, tx, out, t, l, acc, status, now)
			return err
		}
		acc.Status = 200
		if req.Partial {
			acc.Status = 206
		}
		if err := tx.InsertLinkAccess(ctx, acc); err != nil {
			return err
		}
		if !acc.Counted {
			return nil
		}
		l.Downloads++
		if err := tx.UpdateLink(ctx, l); err != nil {
			return err
		}
		left := max(l.MaxDownloads-l.Downloads, 0)
		return s.record(ctx, tx, out, t, l, EventLinkDownloaded, LinkHolder,
			linkEventBody{LinkID: l.ID, ClientAddress: v.Address, DownloadsLeft: &left}, now, nil)
	})
	if err == nil {
		out.Queue(ctx)
	}
	if err != nil || goneErr != nil {
		content.Close()
		if goneErr != nil {
			return nil, goneErr
		}
		return nil, wrapTx("download link", err)
	}
	return &Download{Link: l.Link(now), Bundle: b, Content: content, Counted: acc.Counted, access: acc.ID}, nil
}

// closed is the content of a download that was refused before its
// bundle was opened.
type closed struct{ io.ReadSeeker }

func (closed) Close() error { return nil }

// FinishDownload closes the download's content and records the status
// and bytes of its answer in the access log.
func (s *LinkService) FinishDownload(ctx context.Context, d *Download, status int, bytes int64) {
	if err := d.Content.Close(); err != nil {
		s.log.WarnContext(ctx, "closing a bundle after a download", slog.String("link_id", d.Link.ID), slog.Any("error", err))
	}
	s.FinishAccess(ctx, d.access, status, bytes)
}

// FinishAccess records the status and bytes of an access's answer.
func (s *LinkService) FinishAccess(ctx context.Context, accessID string, status int, bytes int64) {
	if accessID == "" {
		return
	}
	if err := s.db.FinishLinkAccess(context.WithoutCancel(ctx), accessID, status, bytes); err != nil {
		s.log.ErrorContext(ctx, "link access log not finished", slog.String("access_id", accessID), slog.Any("error", err))
	}
}

// servable reads the link's bundle record and checks that it still has
// the link's digest.
func (s *LinkService) servable(ctx context.Context, l StoredLink) (Bundle, error) {
	b, err := s.bundle(ctx, l.BundleID)
	if err != nil {
		return Bundle{}, err
	}
	if subtle.ConstantTimeCompare([]byte(b.SHA256), []byte(l.BundleSHA256)) != 1 {
		return Bundle{}, fmt.Errorf("%w: link %s: bundle %s has SHA-256 %s, the link was made for %s", ErrBundleChanged, l.ID, b.ID, b.SHA256, l.BundleSHA256)
	}
	return b, nil
}

// open opens the bundle's bytes and checks their length against its
// record.
func (s *LinkService) open(ctx context.Context, b Bundle) (BundleContent, error) {
	c, err := s.bundles.OpenBundle(ctx, b.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: bundle %s: its bytes are no longer stored", ErrBundleChanged, b.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("reports: open bundle %s: %w", b.ID, err)
	}
	n, err := c.Seek(0, io.SeekEnd)
	if err == nil && n != b.Size {
		err = fmt.Errorf("%w: bundle %s holds %d bytes, its record says %d", ErrBundleChanged, b.ID, n, b.Size)
	}
	if err == nil {
		_, err = c.Seek(0, io.SeekStart)
	}
	if err != nil {
		c.Close()
		if errors.Is(err, ErrBundleChanged) {
			return nil, err
		}
		return nil, fmt.Errorf("reports: open bundle %s: %w", b.ID, err)
	}
	return c, nil
}

// refuse logs a refused access (409 for a changed bundle, 416 for a
// range not in it, 503 else) and returns err. A changed bundle is logged as an error: someone altered
// what a link serves.
func (s *LinkService) refuse(ctx context.Context, l StoredLink, acc LinkAccess, err error) error {
	acc.Status = 503
	if errors.Is(err, ErrUnsatisfiable) {
		acc.Status = 416
	}
	if errors.Is(err, ErrBundleChanged) {
		acc.Status = 409
		s.log.ErrorContext(ctx, "link refused: its bundle changed", slog.String("link_id", l.ID), slog.Int64("ticket", l.TicketNumber), slog.Any("error", err))
	}
	if ierr := s.db.InLinkTx(ctx, func(tx LinkTx) error { return tx.InsertLinkAccess(ctx, acc) }); ierr != nil {
		s.log.ErrorContext(ctx, "link access log", slog.String("link_id", l.ID), slog.Any("error", ierr))
	}
	return err
}

// gone records, in tx, a refused access to a link that no longer serves
// (410), and its expiry in the history if not recorded yet; it returns
// the *LinkGoneError to answer once tx commits, and the error of the
// writes.
func (s *LinkService) gone(ctx context.Context, tx LinkTx, out *licensing.Outbox, t Ticket, l StoredLink, acc LinkAccess, why string, now time.Time) (*LinkGoneError, error) {
	acc.Status, acc.Counted = 410, false
	if err := tx.InsertLinkAccess(ctx, acc); err != nil {
		return nil, err
	}
	if why == LinkExpired {
		if err := s.expire(ctx, tx, out, t, l, now); err != nil {
			return nil, err
		}
	}
	return &LinkGoneError{LinkID: l.ID, Reason: why}, nil
}

// ExpireDue records the expiry of every link whose expiry passed and is
// not recorded yet (link_expired in the ticket's history,
// report_link.expired to the tenant), and returns how many it recorded.
// The server's periodic sweep calls it; a view or download of an expired
// link records it too.
func (s *LinkService) ExpireDue(ctx context.Context) (int, error) {
	n := 0
	for {
		now := s.now().UTC().Truncate(time.Microsecond)
		due, err := s.db.DueLinks(ctx, now, expireBatch)
		if err != nil {
			return n, fmt.Errorf("reports: due links: %w", err)
		}
		for _, d := range due {
			out := s.lic.Outbox()
			err := s.db.InLinkTx(ctx, func(tx LinkTx) error {
				t, err := tx.LockTicket(ctx, d.TicketID)
				if err != nil {
					return err
				}
				l, err := tx.LockLink(ctx, d.ID)
				if err != nil || l.Status(now) != LinkExpired {
					return err
				}
				return s.expire(ctx, tx, out, t, l, now)
			})
			if err != nil {
				return n, fmt.Errorf("reports: expire link %s: %w", d.ID, err)
			}
			out.Queue(ctx)
			n++
		}
		if len(due) < expireBatch {
			return n, nil
		}
	}
}

// expire records the link's expiry, once.
func (s *LinkService) expire(ctx context.Context, tx LinkTx, out *licensing.Outbox, t Ticket, l StoredLink, now time.Time) error {
	if !l.ExpiredAt.IsZero() {
		return nil
	}
	l.ExpiredAt = now
	if err := tx.UpdateLink(ctx, l); err != nil {
		return err
	}
	return s.record(ctx, tx, out, t, l, EventLinkExpired, SystemActor, linkEventBody{LinkID: l.ID}, now, nil)
}
