package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/ci/webhook"
)

// hookSecrets gives the push webhook handler the projects' secrets.
type hookSecrets struct{ s *Server }

// WebhookSecret is the current secret alone (webhook.Secrets).
func (h hookSecrets) WebhookSecret(ctx context.Context, project string) (string, error) {
	current, _, err := h.WebhookSecrets(ctx, project)
	return current, err
}

// WebhookSecrets gives the push webhook handler the project's secret and,
// through a rotation's grace period, the one it replaced
// (webhook.SecretsLookup).
func (h hookSecrets) WebhookSecrets(ctx context.Context, project string) (current, previous string, err error) {
	current, previous, err = h.s.ci.WebhookSecrets(ctx, project)
	if errors.Is(err, ci.ErrNotFound) {
		return "", "", fmt.Errorf("%w: %q", webhook.ErrUnknownProject, project)
	}
	return current, previous, err
}

// hookEnqueuer queues the scans that verified deliveries ask for.
type hookEnqueuer struct{ s *Server }

// EnqueueCommits queues a scan of each pushed commit; commits scanned or
// queued already are not counted. The ref the push names is not recorded:
// the worker finds the commit's branch in the repository (commitBranch).
func (h hookEnqueuer) EnqueueCommits(ctx context.Context, project string, p webhook.Push) (int, error) {
	proj, err := h.s.ci.Project(ctx, project)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range p.Commits {
		_, created, err := h.s.ci.Enqueue(ctx, ci.NewScan{Kind: ci.KindCommit, ProjectID: proj.ID, CommitSHA: c})
		if err != nil {
			return n, err
		}
		if created {
			n++
		}
	}
	return n, nil
}

// EnqueueImage queues a scan of a pushed image digest.
func (h hookEnqueuer) EnqueueImage(ctx context.Context, ref, digest string) (bool, error) {
	if norm, err := normalizeRef(ref); err == nil {
		ref = norm
	}
	_, created, err := h.s.ci.Enqueue(ctx, ci.NewScan{Kind: ci.KindImage, ImageDigest: digest, ImageRef: ref})
	return created, err
}
