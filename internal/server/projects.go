package server

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/ci/forge"
	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/internal/strictjson"
)

// Managing a project after it is made: PATCH and DELETE
// /api/v1/projects/{name}, its policy versions
// (/api/v1/projects/{name}/policy) and the rotation of its webhook secret
// (/api/v1/projects/{name}/webhook-secret). Creating, getting and listing
// projects are in api.go.

// Webhook secret rotation: the replaced secret keeps working for
// DefaultSecretGrace unless the request asks for another grace period
// (0 ends it at once: the answer to a leaked secret), at most
// MaxSecretGrace.
const (
	DefaultSecretGrace = 24 * time.Hour
	MaxSecretGrace     = 7 * 24 * time.Hour
)

// registerProjects mounts the routes that manage existing projects.
func (s *Server) registerProjects(mux *http.ServeMux) {
	api := func(pattern, scope string, h http.HandlerFunc) {
		mux.Handle(pattern, s.oauth.Middleware("")(requireScope(scope, h)))
	}
	api("PATCH /api/v1/projects/{name}", ScopeProjectsAdmin, s.updateProject)
	api("DELETE /api/v1/projects/{name}", ScopeProjectsAdmin, s.deleteProject)
	api("GET /api/v1/projects/{name}/policy", ScopeScansRead, s.getPolicy)
	api("PUT /api/v1/projects/{name}/policy", ScopeProjectsAdmin, s.putPolicy)
	api("POST /api/v1/projects/{name}/webhook-secret", ScopeProjectsAdmin, s.rotateWebhookSecret)
}

// updateProjectRequest is a PATCH of a project: a field left out is left
// as it is (JSON merge patch, RFC 7396). "forge" set to an object
// replaces the forge (url and token both required, as at creation);
// set to null, it removes it. "products" replaces the licensing products
// the project ships in ([] removes them). The name and the webhook secret
// are not changed here (unknown fields are refused).
type updateProjectRequest struct {
	RepoURL       *string         `json:"repo_url"`
	DefaultBranch *string         `json:"default_branch"`
	Schedule      *string         `json:"schedule"` // "" removes the schedule
	Forge         json.RawMessage `json:"forge"`
	Products      *[]string       `json:"products"`
	Production    *bool           `json:"production"`
}

// maxProjectProducts bounds the products one project ships in.
const maxProjectProducts = 100

func (s *Server) updateProject(w http.ResponseWriter, r *http.Request) {
	var req updateProjectRequest
	if err := httpx.DecodeJSON(w, r, &req, 16<<10); err != nil {
		httpx.WriteErr(w, err)
		return
	}
	u, f, err := req.update()
	if err != nil {
		httpx.WriteErr(w, err)
		return
	}
	// The new repository and forge must suit the outbound policy, as a
	// new project's do.
	if u.RepoURL != nil {
		if err := s.checkRepoURL(*u.RepoURL); err != nil {
			httpx.WriteErr(w, err)
			return
		}
	}
	if f != nil {
		if err := s.checkOutboundURL("forge.url", f.URL); err != nil {
			httpx.WriteErr(w, err)
			return
		}
	}
	ctx := r.Context()
	p, err := s.ci.ProjectSummary(ctx, r.PathValue("name"))
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	if f != nil {
		repoURL := p.RepoURL
		if u.RepoURL != nil {
			repoURL = *u.RepoURL
		}
		if err := f.validate(repoURL); err != nil {
			httpx.WriteErr(w, err)
			return
		}
		u.ForgeURL, u.ForgeToken = &f.URL, &f.Token // sealed by the service
	}
	// The fields are checked together as they will be, in the update's
	// transaction: a repo_url given alone must still suit the forge.
	u.Check = func(after ci.ProjectSummary) error {
		if err := checkProjectFields(after.RepoURL, after.DefaultBranch, after.Schedule); err != nil {
			return err
		}
		if after.ForgeURL != "" {
			if _, _, err := forge.ParseRepo(after.RepoURL); err != nil {
				return invalidField("repo_url %q: the project's forge needs a repo_url of the form HOST/OWNER/REPO: %v", after.RepoURL, err)
			}
		}
		return nil
	}
	after, err := s.ci.UpdateProject(ctx, p.Name, u)
	if err != nil {
		var he *httpx.Error
		if errors.As(err, &he) {
			httpx.WriteErr(w, err)
			return
		}
		s.writeStoreError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, apiProjectSummary(after))
}

// update checks the fields of the request that do not depend on the
// project, and turns them into a store update; a forge to set is
// returned apart, to be validated with the project's repo_url and
// sealed to its ID. The rest is checked as createProjectRequest.validate
// checks a new project, in the update's transaction.
func (req *updateProjectRequest) update() (u ci.ProjectUpdate, f *forgeRequest, err error) {
	for _, f := range []struct {
		name string
		v    **string
		max  int
	}{{"repo_url", &req.RepoURL, maxRepoURL}, {"default_branch", &req.DefaultBranch, maxBranchName}, {"schedule", &req.Schedule, maxSchedule}} {
		if *f.v == nil {
			continue
		}
		t := strings.TrimSpace(**f.v)
		if err := httpx.CheckIdentifier(f.name, t, f.max); err != nil {
			return u, nil, err
		}
		*f.v = &t
	}
	u.RepoURL, u.DefaultBranch, u.Schedule = req.RepoURL, req.DefaultBranch, req.Schedule
	if req.Products != nil {
		if len(*req.Products) > maxProjectProducts {
			return u, nil, invalidField("products: at most %d", maxProjectProducts)
		}
		for i, id := range *req.Products {
			// Whether each exists is checked in the update's transaction.
			if err := httpx.CheckIdentifier(fmt.Sprintf("products[%d]", i), id, 0); err != nil {
				return u, nil, err
			}
			if !productIDRE.MatchString(id) {
				return u, nil, invalidField("products[%d] %q is not a product ID", i, id)
			}
		}
	}
	u.Products, u.Production = req.Products, req.Production
	switch {
	case len(req.Forge) == 0:
	case string(req.Forge) == "null":
		u.RemoveForge = true
	default:
		f = new(forgeRequest)
		if err := strictjson.UnmarshalKnown(req.Forge, f); err != nil {
			if ke, ok := errors.AsType[*strictjson.KeyError](err); ok {
				return u, nil, invalidField("forge: %v", ke)
			}
			return u, nil, invalidField("forge: want an object {\"url\", \"token\"}, or null to remove the forge")
		}
	}
	return u, f, nil
}

// deleteProject deletes a project and what is stored with it; see
// store.DB.DeleteProject. Its scans' blobs (results, reports) stay in
// the blob store.
func (s *Server) deleteProject(w http.ResponseWriter, r *http.Request) {
	if _, err := s.ci.DeleteProject(r.Context(), r.PathValue("name")); err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// PolicyVersion is a version of a project's gate policy as the API shows
// it.
type PolicyVersion struct {
	Project   string    `json:"project"`
	Version   int       `json:"version"`
	Policy    string    `json:"policy"` // the policy file (YAML)
	CreatedAt time.Time `json:"created_at"`
}

// getPolicy answers the project's latest policy, or with ?version=N an
// earlier one.
func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	version := 0
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			httpx.WriteErr(w, invalidField("version %q: want a version number, 1 or more", v))
			return
		}
		version = n
	}
	p, pol, err := s.ci.Policy(ctx, r.PathValue("name"), version)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, apiPolicy(p.Name, pol))
}

func apiPolicy(project string, p ci.PolicyVersion) PolicyVersion {
	return PolicyVersion{Project: project, Version: p.Version, Policy: p.Body, CreatedAt: p.CreatedAt}
}

// putPolicyRequest is the JSON form of a policy PUT.
type putPolicyRequest struct {
	Policy string `json:"policy"`
}

// yamlTypes are the Content-Types of a policy PUT whose body is the
// policy file itself.
var yamlTypes = map[string]bool{"application/yaml": true, "application/x-yaml": true, "text/yaml": true, "text/x-yaml": true}

// putPolicy makes the body the project's policy: a new version, which
// the gate uses at once (its cache keys on the version), answered 201;
// or, when it is the latest version already, that version, answered 200.
// The body is {"policy": "<YAML>"}, or the YAML itself with Content-Type
// application/yaml.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	body, err := readPolicyBody(w, r)
	if err != nil {
		httpx.WriteErr(w, err)
		return
	}
	p, pol, created, err := s.ci.SetPolicy(r.Context(), r.PathValue("name"), body)
	if pe, ok := errors.AsType[*ci.PolicyError](err); ok {
		httpx.WriteErr(w, invalidField("%v", pe))
		return
	}
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", "/api/v1/projects/"+url.PathEscape(p.Name)+"/policy?version="+strconv.Itoa(pol.Version))
	httpx.WriteJSON(w, status, apiPolicy(p.Name, pol))
}

func readPolicyBody(w http.ResponseWriter, r *http.Request) (string, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if !yamlTypes[mt] {
		var req putPolicyRequest
		if err := httpx.DecodeJSON(w, r, &req, maxPolicySize+16<<10); err != nil {
			return "", err
		}
		if len(req.Policy) > maxPolicySize {
			return "", invalidField("policy: at most %d bytes", maxPolicySize)
		}
		return req.Policy, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPolicySize+1))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok || len(b) > maxPolicySize {
		return "", &httpx.Error{Status: http.StatusRequestEntityTooLarge, Code: httpx.CodeBodyTooLarge, Message: fmt.Sprintf("the policy is larger than %d bytes", maxPolicySize)}
	}
	if err != nil {
		return "", &httpx.Error{Status: http.StatusBadRequest, Code: httpx.CodeInvalidField, Message: "the policy could not be read"}
	}
	return string(b), nil
}

// rotateSecretRequest is the optional body of a webhook secret rotation.
type rotateSecretRequest struct {
	// GraceSeconds is how long the replaced secret keeps working; nil
	// means DefaultSecretGrace, 0 ends it at once.
	GraceSeconds *int64 `json:"grace_seconds"`
}

// RotatedSecret answers a webhook secret rotation. The secret is shown
// this once.
type RotatedSecret struct {
	WebhookSecret string `json:"webhook_secret"`
	// PreviousValidUntil is when the replaced secret stops working;
	// absent when it stopped at once.
	PreviousValidUntil *time.Time `json:"previous_valid_until,omitempty"`
}

// rotateWebhookSecret gives the project a new random webhook secret,
// sealed at rest like one given at creation, and answers it once. Only
// the secret just replaced keeps working through the grace period: a
// second rotation within it ends the first secret's.
func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	grace := DefaultSecretGrace
	if r.ContentLength != 0 {
		var req rotateSecretRequest
		if err := httpx.DecodeJSON(w, r, &req, 4<<10); err != nil {
			httpx.WriteErr(w, err)
			return
		}
		if req.GraceSeconds != nil {
			if *req.GraceSeconds < 0 || *req.GraceSeconds > int64(MaxSecretGrace/time.Second) {
				httpx.WriteErr(w, invalidField("grace_seconds %d: want 0 to %d", *req.GraceSeconds, int64(MaxSecretGrace/time.Second)))
				return
			}
			grace = time.Duration(*req.GraceSeconds) * time.Second
		}
	}
	secret := rand.Text() // 26 base32 characters: 130 random bits
	until, err := s.ci.RotateWebhookSecret(r.Context(), r.PathValue("name"), secret, grace)
	if err != nil {
		s.writeStoreError(w, r, err)
		return
	}
	out := RotatedSecret{WebhookSecret: secret}
	if !until.IsZero() {
		out.PreviousValidUntil = &until
	}
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusOK, out)
}
