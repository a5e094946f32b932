package webhook_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/vigil-sec/vigil/ci/webhook"
)

// rotated is a SecretsLookup: project "app" has the secret "new-secret…"
// and, in its grace period, the previous one; "done" only a current one.
type rotated struct{ secrets }

func (r rotated) WebhookSecrets(ctx context.Context, project string) (string, string, error) {
	cur, err := r.WebhookSecret(ctx, project)
	if project == "app" {
		return cur, secret, err
	}
	return cur, "", err
}

func TestRotatedSecrets(t *testing.T) {
	t.Parallel()
	const newSecret = "new-secret-0123456789"
	gh := fixture(t, "github-push.json")
	gl := fixture(t, "gitlab-push.json")
	signed := func(key string) http.Header {
		return header("X-GitHub-Event", "push", "X-Hub-Signature-256", sign(key, gh))
	}
	tests := []struct {
		name, provider, project string
		h                       http.Header
		body                    []byte
		want                    int
	}{
		{"new secret", "github", "app", signed(newSecret), gh, http.StatusAccepted},
		{"previous secret in its grace period", "github", "app", signed(secret), gh, http.StatusAccepted},
		{"gitlab previous token", "gitlab", "app", header("X-Gitlab-Event", "Push Hook", "X-Gitlab-Token", secret), gl, http.StatusAccepted},
		{"neither", "github", "app", signed("wrong"), gh, http.StatusUnauthorized},
		{"no grace period: old secret", "github", "done", signed(secret), gh, http.StatusUnauthorized},
		{"no grace period: new secret", "github", "done", signed(newSecret), gh, http.StatusAccepted},
		{"empty previous is not a key", "github", "done", signed(""), gh, http.StatusUnauthorized},
		{"unknown project", "github", "nope", signed(secret), gh, http.StatusUnauthorized},
		{"project without a secret", "github", "nosecret", signed(""), gh, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, enq := setup(t, func(c *webhook.Config) {
				c.Secrets = rotated{secrets{"app": newSecret, "done": newSecret, "nosecret": ""}}
			})
			got, body := send(t, srv, "/hooks/"+tt.provider+"/"+tt.project, tt.h, tt.body)
			if got != tt.want {
				t.Fatalf("status = %d (%v), want %d", got, body, tt.want)
			}
			if n := len(enq.calls()); (n > 0) != (tt.want == http.StatusAccepted) {
				t.Errorf("%d pushes enqueued for status %d", n, got)
			}
		})
	}
}
