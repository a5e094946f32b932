package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/vigil-sec/vigil/ci"
)

// SetForge records, or replaces, the forge of a project. ErrNotFound if
// the project does not exist.
func (d *DB) SetForge(ctx context.Context, f ci.Forge) (ci.Forge, error) {
	if f.ProjectID == "" || strings.TrimSpace(f.APIURL) == "" || f.Token == "" {
		return ci.Forge{}, fmt.Errorf("%w: a forge needs a project, an API URL and a token", ErrInvalid)
	}
	f.CreatedAt = now()
	_, err := d.exec(ctx, `INSERT INTO project_forges (project_id, api_url, token, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (project_id) DO UPDATE SET api_url = excluded.api_url, token = excluded.token, created_at = excluded.created_at`,
		f.ProjectID, f.APIURL, f.Token, d.timeArg(f.CreatedAt))
	if isForeignKeyViolation(err) {
		return ci.Forge{}, fmt.Errorf("project %q: %w", f.ProjectID, ErrNotFound)
	}
	if err != nil {
		return ci.Forge{}, fmt.Errorf("store: set forge of project %q: %w", f.ProjectID, err)
	}
	return f, nil
}

// GetForge returns the forge of a project; ErrNotFound if it has none.
func (d *DB) GetForge(ctx context.Context, projectID string) (ci.Forge, error) {
	return getRow(ctx, d, "forge of project", projectID, scanForge,
		"SELECT project_id, api_url, token, created_at FROM project_forges WHERE project_id = ?", projectID)
}

func scanForge(row rowScanner) (ci.Forge, error) {
	var f ci.Forge
	err := row.Scan(&f.ProjectID, &f.APIURL, &f.Token, timeCol{&f.CreatedAt})
	return f, err
}
