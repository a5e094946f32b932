package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-sec/vigil/ci"
)

// newID returns a new row ID: a UUIDv7, whose text order is creation order.
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

const projectCols = "id, name, repo_url, default_branch, webhook_secret, schedule, created_at, previous_webhook_secret, previous_secret_until, production"

func scanProject(row interface{ Scan(...any) error }) (ci.Project, error) {
	var p ci.Project
	err := row.Scan(&p.ID, &p.Name, &p.RepoURL, &p.DefaultBranch, textCol{&p.WebhookSecret}, &p.Schedule, timeCol{&p.CreatedAt},
		textCol{&p.PreviousWebhookSecret}, timeCol{&p.PreviousSecretUntil}, &p.Production)
	return p, err
}

// CreateProject stores a new project and returns it with its ID and
// creation time set. The name must be unique (ErrConflict) and not empty
// (ErrInvalid).
func (d *DB) CreateProject(ctx context.Context, p ci.Project) (ci.Project, error) {
	out, err := d.CreateProjectWith(ctx, ci.NewProject{Project: p})
	return out.Project, err
}

// CreateProjectWith stores a project, its forge and its first policy in
// one transaction: when any write fails, none is kept.
func (d *DB) CreateProjectWith(ctx context.Context, n ci.NewProject) (ci.CreatedProject, error) {
	p := n.Project
	p.Name = strings.TrimSpace(p.Name)
	if p.Name == "" {
		return ci.CreatedProject{}, fmt.Errorf("%w: project name is empty", ErrInvalid)
	}
	if n.ForgeURL != "" && n.ForgeToken == "" {
		return ci.CreatedProject{}, fmt.Errorf("%w: a forge needs a project, an API URL and a token", ErrInvalid)
	}
	if p.ID == "" {
		p.ID = newID()
	}
	p.CreatedAt = now()
	fail := func(err error) (ci.CreatedProject, error) {
		return ci.CreatedProject{}, fmt.Errorf("store: create project %q: %w", p.Name, err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, d.rebind("INSERT INTO projects (id, name, repo_url, default_branch, webhook_secret, schedule, created_at, production) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
		p.ID, p.Name, p.RepoURL, p.DefaultBranch, nullString(p.WebhookSecret), p.Schedule, d.timeArg(p.CreatedAt), p.Production)
	if isUniqueViolation(err) {
		return ci.CreatedProject{}, fmt.Errorf("%w: a project named %q exists", ErrConflict, p.Name)
	}
	if err != nil {
		return fail(err)
	}
	if n.ForgeURL != "" {
		if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO project_forges (project_id, api_url, token, created_at) VALUES (?, ?, ?, ?)"),
			p.ID, n.ForgeURL, n.ForgeToken, d.timeArg(p.CreatedAt)); err != nil {
			return fail(err)
		}
	}
	out := ci.CreatedProject{Project: p}
	if n.Policy != "" {
		if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO policies (project_id, version, body, created_at) VALUES (?, 1, ?, ?)"),
			p.ID, n.Policy, d.timeArg(p.CreatedAt)); err != nil {
			return fail(err)
		}
		out.PolicyVersion = 1
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return out, nil
}

// GetProject returns the project with the ID, or ErrNotFound.
func (d *DB) GetProject(ctx context.Context, id string) (ci.Project, error) {
	return getRow(ctx, d, "project", id, scanProject, "SELECT "+projectCols+" FROM projects WHERE id = ?", id)
}

// GetProjectByName returns the project with the name, or ErrNotFound.
func (d *DB) GetProjectByName(ctx context.Context, name string) (ci.Project, error) {
	return getRow(ctx, d, "project", name, scanProject, "SELECT "+projectCols+" FROM projects WHERE name = ?", name)
}

// ListProjects returns all projects ordered by name.
func (d *DB) ListProjects(ctx context.Context) ([]ci.Project, error) {
	return listRows(ctx, d, "projects", scanProject, "SELECT "+projectCols+" FROM projects ORDER BY name")
}

// projectSummaryCols read a ProjectSummary in one query, without a query
// per project.
const projectSummaryCols = projectCols + `,
	(SELECT COALESCE(MAX(version), 0) FROM policies WHERE policies.project_id = projects.id),
	COALESCE((SELECT api_url FROM project_forges WHERE project_forges.project_id = projects.id), '')`

func scanProjectSummary(row rowScanner) (ci.ProjectSummary, error) {
	var p ci.ProjectSummary
	err := row.Scan(&p.ID, &p.Name, &p.RepoURL, &p.DefaultBranch, textCol{&p.WebhookSecret}, &p.Schedule, timeCol{&p.CreatedAt},
		textCol{&p.PreviousWebhookSecret}, timeCol{&p.PreviousSecretUntil}, &p.Production, &p.PolicyVersion, &p.ForgeURL)
	return p, err
}

// querier runs a query on the read pool, the write pool or in a
// transaction (*sql.DB and *sql.Tx).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// withProducts fills the Products of the summaries, in one query through
// q (a transaction sees its own writes).
func (d *DB) withProducts(ctx context.Context, q querier, ps []ci.ProjectSummary) error {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	products := map[string][]string{}
	if len(ids) > 0 {
		in, args := inList(ids)
		rows, err := q.QueryContext(ctx, d.rebind("SELECT project_id, product_id FROM project_products WHERE project_id IN "+in+" ORDER BY product_id"), args...)
		if err != nil {
			return fmt.Errorf("store: products of projects: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var project, product string
			if err := rows.Scan(&project, &product); err != nil {
				return fmt.Errorf("store: products of projects: %w", err)
			}
			products[project] = append(products[project], product)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: products of projects: %w", err)
		}
	}
	for i := range ps {
		ps[i].Products = products[ps[i].ID]
		if ps[i].Products == nil {
			ps[i].Products = []string{}
		}
	}
	return nil
}

// inList is the placeholder list "(?, ?, …)" of the distinct values, and
// the values as query arguments; values must not be empty.
func inList(values []string) (string, []any) {
	args := make([]any, 0, len(values))
	seen := make(map[string]bool, len(values))
	for _, v := range values {
		if !seen[v] {
			seen[v] = true
			args = append(args, v)
		}
	}
	return "(?" + strings.Repeat(", ?", len(args)-1) + ")", args
}

// ListProjectPage returns one page of the projects, oldest first (see
// Page), with their policy versions, forges and products, and the cursor
// of the next page ("" after the last).
func (d *DB) ListProjectPage(ctx context.Context, p ci.Page) ([]ci.ProjectSummary, string, error) {
	ps, next, err := listPage(ctx, d, "projects", "projects", projectSummaryCols, scanProjectSummary,
		func(s ci.ProjectSummary) string { return s.ID }, Page(p), "")
	if err != nil {
		return nil, "", err
	}
	return ps, next, d.withProducts(ctx, d.read, ps)
}

// GetProjectSummary returns the project with the name, with its policy
// version, forge and products, or ErrNotFound.
func (d *DB) GetProjectSummary(ctx context.Context, name string) (ci.ProjectSummary, error) {
	p, err := getRow(ctx, d, "project", name, scanProjectSummary, "SELECT "+projectSummaryCols+" FROM projects WHERE name = ?", name)
	if err != nil {
		return ci.ProjectSummary{}, err
	}
	ps := []ci.ProjectSummary{p}
	return ps[0], d.withProducts(ctx, d.read, ps)
}

// ListProductProjects returns the projects that ship in the licensing
// product, with their policy versions, forges and products, ordered by
// name; none for a product that does not exist.
func (d *DB) ListProductProjects(ctx context.Context, productID string) ([]ci.ProjectSummary, error) {
	ps, err := listRows(ctx, d, "projects of product "+productID, scanProjectSummary, "SELECT "+projectSummaryCols+
		" FROM projects WHERE id IN (SELECT project_id FROM project_products WHERE product_id = ?) ORDER BY name", productID)
	if err != nil {
		return nil, err
	}
	return ps, d.withProducts(ctx, d.read, ps)
}

// AddPolicy stores body as the next version of the project's policy and
// returns it. ErrNotFound if the project does not exist.
func (d *DB) AddPolicy(ctx context.Context, projectID, body string) (ci.PolicyVersion, error) {
	created := now()
	// Two concurrent writers on PostgreSQL may compute the same next
	// version; the loser retries.
	for range 10 {
		var pol ci.PolicyVersion
		err := d.writeRow(ctx, `INSERT INTO policies (project_id, version, body, created_at)
			VALUES (?, (SELECT COALESCE(MAX(version), 0) + 1 FROM policies WHERE project_id = ?), ?, ?)
			RETURNING project_id, version, body, created_at`,
			projectID, projectID, body, d.timeArg(created)).
			Scan(&pol.ProjectID, &pol.Version, &pol.Body, timeCol{&pol.CreatedAt})
		switch {
		case isUniqueViolation(err):
			continue
		case isForeignKeyViolation(err):
			return ci.PolicyVersion{}, fmt.Errorf("project %q: %w", projectID, ErrNotFound)
		case err != nil:
			return ci.PolicyVersion{}, fmt.Errorf("store: add policy to project %q: %w", projectID, err)
		}
		return pol, nil
	}
	return ci.PolicyVersion{}, fmt.Errorf("%w: concurrent policy updates of project %q, try again", ErrConflict, projectID)
}

// GetPolicy returns a version of the project's policy; version 0 means the
// latest. ErrNotFound if there is none.
func (d *DB) GetPolicy(ctx context.Context, projectID string, version int) (ci.PolicyVersion, error) {
	q := "SELECT project_id, version, body, created_at FROM policies WHERE project_id = ? AND version = ?"
	args := []any{projectID, version}
	if version == 0 {
		q = "SELECT project_id, version, body, created_at FROM policies WHERE project_id = ? ORDER BY version DESC LIMIT 1"
		args = args[:1]
	}
	var pol ci.PolicyVersion
	err := d.queryRow(ctx, q, args...).Scan(&pol.ProjectID, &pol.Version, &pol.Body, timeCol{&pol.CreatedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return ci.PolicyVersion{}, fmt.Errorf("policy of project %q: %w", projectID, ErrNotFound)
	}
	if err != nil {
		return ci.PolicyVersion{}, fmt.Errorf("store: get policy of project %q: %w", projectID, err)
	}
	return pol, nil
}

// ProjectNames maps the IDs of projects to their names in one query;
// IDs of projects that do not exist are left out.
func (d *DB) ProjectNames(ctx context.Context, ids []string) (map[string]string, error) {
	names := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return names, nil
	}
	in, args := inList(ids)
	rows, err := d.read.QueryContext(ctx, d.rebind("SELECT id, name FROM projects WHERE id IN "+in), args...)
	if err != nil {
		return nil, fmt.Errorf("store: project names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("store: project names: %w", err)
		}
		names[id] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: project names: %w", err)
	}
	return names, nil
}

// UpdateProject applies u to the project with the ID in one transaction
// and returns the project as it is now. ErrNotFound if there is no such
// project.
func (d *DB) UpdateProject(ctx context.Context, id string, u ci.ProjectUpdate) (ci.ProjectSummary, error) {
	if u.ForgeURL != nil && (u.RemoveForge || u.ForgeToken == nil || *u.ForgeToken == "" || *u.ForgeURL == "") {
		return ci.ProjectSummary{}, fmt.Errorf("%w: a forge needs an API URL and a token", ErrInvalid)
	}
	fail := func(err error) (ci.ProjectSummary, error) {
		return ci.ProjectSummary{}, fmt.Errorf("store: update project %q: %w", id, err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	// COALESCE keeps what the update leaves out; the row lock it takes
	// on PostgreSQL orders concurrent updates of one project.
	var production any
	if u.Production != nil {
		production = *u.Production
	}
	res, err := tx.ExecContext(ctx, d.rebind(`UPDATE projects SET repo_url = COALESCE(?, repo_url),
		default_branch = COALESCE(?, default_branch), schedule = COALESCE(?, schedule),
		production = COALESCE(?, production) WHERE id = ?`),
		nullableString(u.RepoURL), nullableString(u.DefaultBranch), nullableString(u.Schedule), production, id)
	if err != nil {
		return fail(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail(err)
	} else if n == 0 {
		return ci.ProjectSummary{}, fmt.Errorf("project %q: %w", id, ErrNotFound)
	}
	if u.Products != nil {
		if err := d.setProducts(ctx, tx, id, *u.Products); err != nil {
			return ci.ProjectSummary{}, err
		}
	}
	switch {
	case u.RemoveForge:
		if _, err := tx.ExecContext(ctx, d.rebind("DELETE FROM project_forges WHERE project_id = ?"), id); err != nil {
			return fail(err)
		}
	case u.ForgeURL != nil:
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO project_forges (project_id, api_url, token, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id) DO UPDATE SET api_url = excluded.api_url, token = excluded.token, created_at = excluded.created_at`),
			id, *u.ForgeURL, *u.ForgeToken, d.timeArg(now())); err != nil {
			return fail(err)
		}
	}
	p, err := scanProjectSummary(tx.QueryRowContext(ctx, d.rebind("SELECT "+projectSummaryCols+" FROM projects WHERE id = ?"), id))
	if err != nil {
		return fail(err)
	}
	ps := []ci.ProjectSummary{p}
	if err := d.withProducts(ctx, tx, ps); err != nil {
		return fail(err)
	}
	p = ps[0]
	if u.Check != nil {
		if err := u.Check(p); err != nil {
			return ci.ProjectSummary{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return p, nil
}

// setProducts makes products the licensing products the project ships
// in, in the transaction. IDs that name no product are ErrInvalid, naming
// each, before anything is written.
func (d *DB) setProducts(ctx context.Context, tx *sql.Tx, projectID string, products []string) error {
	if slices.Contains(products, "") {
		return fmt.Errorf("%w: products: a product ID cannot be empty", ErrInvalid)
	}
	products = slices.Compact(slices.Sorted(slices.Values(products)))
	if len(products) > 0 {
		in, args := inList(products)
		rows, err := tx.QueryContext(ctx, d.rebind("SELECT id FROM licensing_products WHERE id IN "+in), args...)
		if err != nil {
			return fmt.Errorf("store: products of project %q: %w", projectID, err)
		}
		known := map[string]bool{}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("store: products of project %q: %w", projectID, err)
			}
			known[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: products of project %q: %w", projectID, err)
		}
		var unknown []string
		for _, id := range products {
			if !known[id] {
				unknown = append(unknown, strconv.Quote(id))
			}
		}
		if len(unknown) > 0 {
			return fmt.Errorf("%w: products: no product with the ID %s; create it first (POST /api/v1/products)", ErrInvalid, strings.Join(unknown, ", "))
		}
	}
	if _, err := tx.ExecContext(ctx, d.rebind("DELETE FROM project_products WHERE project_id = ?"), projectID); err != nil {
		return fmt.Errorf("store: products of project %q: %w", projectID, err)
	}
	for _, id := range products {
		if _, err := tx.ExecContext(ctx, d.rebind("INSERT INTO project_products (project_id, product_id) VALUES (?, ?)"), projectID, id); err != nil {
			return fmt.Errorf("store: products of project %q: %w", projectID, err)
		}
	}
	return nil
}

func nullableString(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// projectRows are the tables that hold rows of a project, in the order
// DeleteProject deletes them: rows that name a scan first, the scans
// (rescans before the scans they rescan), the project last. The foreign
// keys cascade too; deleting explicitly does not depend on them.
var projectRows = []string{
	"DELETE FROM gate_summaries WHERE scan_id IN (SELECT id FROM scans WHERE project_id = ?)",
	"DELETE FROM recorded_scans WHERE project_id = ?",
	"DELETE FROM findings WHERE project_id = ?",
	"DELETE FROM waivers WHERE project_id = ?",
	"DELETE FROM waiver_versions WHERE project_id = ?",
	"DELETE FROM policies WHERE project_id = ?",
	"DELETE FROM project_forges WHERE project_id = ?",
	"DELETE FROM project_products WHERE project_id = ?",
	"DELETE FROM scans WHERE project_id = ? AND rescan_of IS NOT NULL",
	"DELETE FROM scans WHERE project_id = ?",
	"DELETE FROM projects WHERE id = ?",
}

// DeleteProject deletes the project with the ID and everything stored
// with it (policies, forge, products, waivers, tracked findings, scans
// and their gate summaries) in one transaction. The blobs of its scans
// stay in the blob store. ErrNotFound if there is no such project;
// ErrConflict, and nothing deleted, while a scan of it is queued or
// running, or when a release holds one of its scans.
func (d *DB) DeleteProject(ctx context.Context, id string) error {
	fail := func(err error) error { return fmt.Errorf("store: delete project %q: %w", id, err) }
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	// On PostgreSQL the row lock makes a concurrent insert of a scan of
	// the project wait, then fail, instead of slipping in after the
	// check below (SQLite's write transaction excludes it already).
	lock := "SELECT name FROM projects WHERE id = ?"
	if d.dialect == Postgres {
		lock += " FOR UPDATE"
	}
	var name string
	err = tx.QueryRowContext(ctx, d.rebind(lock), id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("project %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return fail(err)
	}
	var active int
	if err := tx.QueryRowContext(ctx, d.rebind("SELECT count(*) FROM scans WHERE project_id = ? AND status IN (?, ?)"),
		id, ci.ScanQueued, ci.ScanRunning).Scan(&active); err != nil {
		return fail(err)
	}
	if active > 0 {
		return fmt.Errorf("%w: project %q has %d scans queued or running; delete it when they have finished", ErrConflict, name, active)
	}
	// Releases are immutable: the scans they are made of stay.
	var product, version string
	err = tx.QueryRowContext(ctx, d.rebind(`SELECT r.product_id, r.version FROM release_items i
		JOIN releases r ON r.id = i.release_id JOIN scans s ON s.id = i.scan_id
		WHERE s.project_id = ? ORDER BY r.created_at, r.id LIMIT 1`), id).Scan(&product, &version)
	switch {
	case err == nil:
		return fmt.Errorf("%w: project %q has scans in release %s of product %q (and maybe others); releases keep their scans", ErrConflict, name, version, product)
	case !errors.Is(err, sql.ErrNoRows):
		return fail(err)
	}
	for _, q := range projectRows {
		if _, err := tx.ExecContext(ctx, d.rebind(q), id); err != nil {
			return fail(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// SetPolicy makes body the project's policy: it stores it as the next
// version, unless it is the latest version already, which it returns
// with created false (setting the same policy twice makes one version).
// ErrNotFound if the project does not exist.
func (d *DB) SetPolicy(ctx context.Context, projectID, body string) (pol ci.PolicyVersion, created bool, err error) {
	// Two concurrent writers on PostgreSQL may compute the same next
	// version; the loser tries again, and may find its body stored.
	for range 10 {
		pol, created, err = d.setPolicy(ctx, projectID, body)
		if !isUniqueViolation(err) {
			return pol, created, err
		}
	}
	return ci.PolicyVersion{}, false, fmt.Errorf("%w: concurrent policy updates of project %q, try again", ErrConflict, projectID)
}

func (d *DB) setPolicy(ctx context.Context, projectID, body string) (ci.PolicyVersion, bool, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return ci.PolicyVersion{}, false, fmt.Errorf("store: set policy of project %q: %w", projectID, err)
	}
	defer tx.Rollback()
	var latest ci.PolicyVersion
	err = tx.QueryRowContext(ctx, d.rebind("SELECT project_id, version, body, created_at FROM policies WHERE project_id = ? ORDER BY version DESC LIMIT 1"), projectID).
		Scan(&latest.ProjectID, &latest.Version, &latest.Body, timeCol{&latest.CreatedAt})
	switch {
	case err == nil && latest.Body == body:
		return latest, false, nil
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return ci.PolicyVersion{}, false, fmt.Errorf("store: set policy of project %q: %w", projectID, err)
	}
	pol := ci.PolicyVersion{ProjectID: projectID, Version: latest.Version + 1, Body: body, CreatedAt: now()}
	_, err = tx.ExecContext(ctx, d.rebind("INSERT INTO policies (project_id, version, body, created_at) VALUES (?, ?, ?, ?)"),
		projectID, pol.Version, body, d.timeArg(pol.CreatedAt))
	switch {
	case isUniqueViolation(err):
		return ci.PolicyVersion{}, false, err // SetPolicy tries again
	case isForeignKeyViolation(err):
		return ci.PolicyVersion{}, false, fmt.Errorf("project %q: %w", projectID, ErrNotFound)
	case err != nil:
		return ci.PolicyVersion{}, false, fmt.Errorf("store: set policy of project %q: %w", projectID, err)
	}
	if err := tx.Commit(); err != nil {
		return ci.PolicyVersion{}, false, fmt.Errorf("store: set policy of project %q: %w", projectID, err)
	}
	pol.CreatedAt = pol.CreatedAt.UTC().Truncate(time.Microsecond)
	return pol, true, nil
}

// RotateWebhookSecret makes secret (stored as given: the caller seals it)
// the project's webhook secret. With until after now, the secret it
// replaces becomes the previous one, accepted until then; with a zero
// until, the replaced secret stops working at once. Only one previous
// secret is kept: rotating again drops the one before. It returns the
// project as it is now; ErrNotFound if there is no such project.
func (d *DB) RotateWebhookSecret(ctx context.Context, id, secret string, until time.Time) (ci.Project, error) {
	if secret == "" {
		return ci.Project{}, fmt.Errorf("%w: a webhook secret cannot be empty", ErrInvalid)
	}
	q := `UPDATE projects SET previous_webhook_secret = webhook_secret, previous_secret_until = ?, webhook_secret = ?
		WHERE id = ? RETURNING ` + projectCols
	args := []any{d.timeArg(until), secret, id}
	if until.IsZero() {
		q = `UPDATE projects SET previous_webhook_secret = NULL, previous_secret_until = NULL, webhook_secret = ?
			WHERE id = ? RETURNING ` + projectCols
		args = args[1:]
	}
	p, err := scanProject(d.writeRow(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return ci.Project{}, fmt.Errorf("project %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return ci.Project{}, fmt.Errorf("store: rotate the webhook secret of project %q: %w", id, err)
	}
	return p, nil
}
