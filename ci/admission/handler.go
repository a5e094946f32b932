package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-sec/vigil/ci"
)

// MaxReviewSize bounds the body of an AdmissionReview. The API server
// limits objects to about 3 MiB; a review may carry the old object too.
const MaxReviewSize = 8 << 20 // 8 MiB

// DefaultLookupTimeout bounds the gate lookups of one review. The API
// server waits 10 s for a webhook by default.
const DefaultLookupTimeout = 3 * time.Second

// CodeLookupFailed is the reason code of an image whose gate could not be
// read; the image counts as unknown.
const CodeLookupFailed = "LOOKUP_FAILED"

// Limits on the denial message, which kubectl shows to the user.
const (
	maxReasonsPerImage = 3
	maxMessage         = 4 << 10
)

// GateLookup answers an image's gate decision from stored state, at once:
// it never waits for a scan. The image is as written in the pod spec (a
// tag or a digest reference). A nil decision counts as unknown.
type GateLookup interface {
	ImageGate(ctx context.Context, image string) (*ci.Decision, error)
}

// Config configures Handler.
type Config struct {
	Gates GateLookup // required
	// FailOpen admits images whose gate is unknown or pending, with a
	// warning. By default they are denied: unknown never reads as pass.
	FailOpen bool
	// LookupTimeout bounds the lookups of one review; an image not looked
	// up in time is unknown. Zero means DefaultLookupTimeout.
	LookupTimeout time.Duration
	// Logger receives a line per denial and per failed lookup; nil
	// discards.
	Logger *slog.Logger
}

// Validate reports a missing or invalid field.
func (c *Config) Validate() error {
	if c.Gates == nil {
		return errors.New("admission: Config.Gates is required")
	}
	if c.LookupTimeout < 0 {
		return errors.New("admission: Config.LookupTimeout must not be negative")
	}
	return nil
}

// Handler is a Kubernetes validating admission webhook, to be mounted at
// /admission/v1/validate. It reads an admission.k8s.io/v1 AdmissionReview
// (POST, application/json, at most MaxReviewSize), looks up the gate of
// every container image of the admitted object (see Images) and answers an
// AdmissionReview with the request's uid.
//
// The request is denied, with status code 403 and a message naming each
// denied image and its reasons, when any image's gate is fail, or unknown
// or pending unless cfg.FailOpen. A lookup error counts as unknown. Kinds
// without pods are allowed. A review that cannot be read is 400
// {"code", "message"}, which the API server handles per the webhook's
// failurePolicy.
func Handler(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.LookupTimeout == 0 {
		cfg.LookupTimeout = DefaultLookupTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &server{cfg: cfg, log: log}, nil
}

type server struct {
	cfg Config
	log *slog.Logger
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "send the AdmissionReview with POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "send the AdmissionReview as application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxReviewSize))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("the review is larger than the limit of %d bytes", MaxReviewSize))
		} else {
			writeError(w, http.StatusBadRequest, "BAD_REVIEW", "the body could not be read")
		}
		return
	}
	review, err := DecodeReview(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BAD_REVIEW", fmt.Sprintf("not an AdmissionReview: %v", err))
		return
	}
	if review.APIVersion != APIVersion || review.Kind != Kind || review.Request == nil || review.Request.UID == "" {
		writeError(w, http.StatusBadRequest, "BAD_REVIEW", fmt.Sprintf("want an %s %s with a request and its uid; configure the webhook with admissionReviewVersions: [v1]", APIVersion, Kind))
		return
	}
	images, err := Images(review.Request)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BAD_REVIEW", fmt.Sprintf("the object could not be read: %v", err))
		return
	}
	resp := s.decide(r.Context(), review.Request, images)
	writeJSON(w, http.StatusOK, Review{APIVersion: APIVersion, Kind: Kind, Response: resp})
}

// decide looks up every image and builds the admission response.
func (s *server) decide(ctx context.Context, req *Request, images []string) *Response {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LookupTimeout)
	defer cancel()
	log := s.log.With("uid", req.UID, "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)

	resp := &Response{UID: req.UID, Allowed: true}
	var denials []string
	for _, image := range images {
		d := s.lookup(ctx, log, image)
		switch {
		case d.Decision == ci.Pass:
			continue
		case d.Decision == ci.Fail, !s.cfg.FailOpen:
			denials = append(denials, describe(image, d))
			log.InfoContext(ctx, "admission: image denied", "image", image, "decision", d.Decision)
		default:
			resp.Warnings = append(resp.Warnings, fmt.Sprintf("image %s: the Vigil gate is %s; admitted because admission fails open", image, d.Decision))
		}
	}
	if len(denials) > 0 {
		msg := "denied by the Vigil gate: " + strings.Join(denials, "; ")
		if len(msg) > maxMessage {
			msg = strings.ToValidUTF8(msg[:maxMessage-len("…")], "") + "…"
		}
		resp.Allowed = false
		resp.Result = &Status{Status: "Failure", Message: msg, Reason: "Forbidden", Code: http.StatusForbidden}
	}
	return resp
}

// lookup returns an image's decision, unknown when it cannot be had.
func (s *server) lookup(ctx context.Context, log *slog.Logger, image string) *ci.Decision {
	d, err := s.cfg.Gates.ImageGate(ctx, image)
	switch {
	case err != nil:
		log.ErrorContext(ctx, "admission: looking up the gate", "image", image, "err", err)
		return &ci.Decision{Decision: ci.Unknown, Reasons: []ci.Reason{{
			Code: CodeLookupFailed, Message: "the gate could not be looked up",
		}}}
	case d == nil:
		return &ci.Decision{Decision: ci.Unknown, Reasons: []ci.Reason{{
			Code: ci.CodeNoResult, Message: "the image has not been scanned",
		}}}
	}
	switch d.Decision {
	case ci.Pass, ci.Fail, ci.Pending, ci.Unknown:
		return d
	}
	// A decision this code does not know is not a pass.
	return &ci.Decision{Decision: ci.Unknown, Reasons: d.Reasons}
}

// describe says why an image is denied: its decision and first reasons.
func describe(image string, d *ci.Decision) string {
	var reasons []string
	for i, r := range d.Reasons {
		if i == maxReasonsPerImage {
			reasons = append(reasons, fmt.Sprintf("and %d more", len(d.Reasons)-i))
			break
		}
		reasons = append(reasons, r.Message)
	}
	if len(reasons) == 0 {
		reasons = []string{"no reason given"}
	}
	return fmt.Sprintf("image %s: %s (%s)", image, d.Decision, strings.Join(reasons, ", "))
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
