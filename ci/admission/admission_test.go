package admission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/ci/admission"
)

const (
	webImage     = "registry.example.com/shop/web:1.2.0"
	proxyImage   = "registry.example.com/shop/proxy:2.0"
	migrateImage = "registry.example.com/shop/migrate@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	apiImage     = "registry.example.com/shop/api:3.1"
	reportImage  = "registry.example.com/shop/report:0.9"
	fetchImage   = "registry.example.com/tools/fetch:1"
	brokenImage  = "registry.example.com/shop/broken:1"
)

// gates is a GateLookup over a map; images not in it have no decision.
type gates map[string]*ci.Decision

func (g gates) ImageGate(_ context.Context, image string) (*ci.Decision, error) {
	if image == brokenImage {
		return nil, errors.New("pq: relation \"gates\" does not exist")
	}
	return g[image], nil
}

func decision(d, msg string) *ci.Decision {
	return &ci.Decision{Decision: d, Reasons: []ci.Reason{{Code: "TEST", Message: msg}}}
}

func pass() *ci.Decision { return decision(ci.Pass, "no findings at or above high severity") }

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// review wraps an object in an AdmissionReview.
func review(t *testing.T, group, kind string, object []byte) []byte {
	t.Helper()
	b, err := json.Marshal(admission.Review{
		APIVersion: admission.APIVersion, Kind: admission.Kind,
		Request: &admission.Request{
			UID: "uid-" + kind, Kind: admission.GroupVersionKind{Group: group, Version: "v1", Kind: kind},
			Name: "x", Namespace: "shop", Operation: "CREATE", Object: object,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func podWith(images ...string) []byte {
	var cs []map[string]string
	for _, im := range images {
		cs = append(cs, map[string]string{"name": "c", "image": im})
	}
	b, _ := json.Marshal(map[string]any{"kind": "Pod", "spec": map[string]any{"containers": cs}})
	return b
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func setup(t *testing.T, g gates, failOpen bool) *httptest.Server {
	t.Helper()
	h, err := admission.Handler(admission.Config{Gates: g, FailOpen: failOpen, Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admission/v1/validate", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+"/admission/v1/validate", contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

func TestImages(t *testing.T) {
	t.Parallel()
	workload := func(kind string) []byte {
		return []byte(`{"kind":"` + kind + `","spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:1"}],"initContainers":[{"name":"b","image":"b:1"}]}}}}`)
	}
	tests := []struct {
		name        string
		group, kind string
		object      []byte
		want        []string
		wantErr     bool
	}{
		{name: "Pod", kind: "Pod", object: podWith("a:1", "b:1", "a:1"), want: []string{"a:1", "b:1"}},
		{
			name: "Pod with init and ephemeral containers", kind: "Pod",
			object: []byte(`{"spec":{"initContainers":[{"image":"i:1"}],"containers":[{"image":"c:1"}],"ephemeralContainers":[{"image":"debug:1"}]}}`),
			want:   []string{"c:1", "i:1", "debug:1"},
		},
		{name: "Deployment", group: "apps", kind: "Deployment", object: fixture(t, "deployment.json"), want: []string{apiImage}},
		{name: "StatefulSet", group: "apps", kind: "StatefulSet", object: workload("StatefulSet"), want: []string{"a:1", "b:1"}},
		{name: "DaemonSet", group: "apps", kind: "DaemonSet", object: workload("DaemonSet"), want: []string{"a:1", "b:1"}},
		{name: "ReplicaSet", group: "apps", kind: "ReplicaSet", object: workload("ReplicaSet"), want: []string{"a:1", "b:1"}},
		{name: "Job", group: "batch", kind: "Job", object: workload("Job"), want: []string{"a:1", "b:1"}},
		{name: "CronJob", group: "batch", kind: "CronJob", object: fixture(t, "cronjob.json"), want: []string{reportImage, fetchImage}},
		{name: "Service", kind: "Service", object: []byte(`{"spec":{"ports":[{"port":80}]}}`)},
		{name: "Deployment of another group", group: "example.com", kind: "Deployment", object: workload("Deployment")},
		{name: "DELETE", kind: "Pod", object: []byte(`null`)},
		{name: "containers not a list", kind: "Pod", object: []byte(`{"spec":{"containers":"a:1"}}`), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := admission.Images(&admission.Request{Kind: admission.GroupVersionKind{Group: tt.group, Kind: tt.kind}, Object: tt.object})
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("images (-got +want):\n%s", diff)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	passing := gates{webImage: pass(), proxyImage: pass(), migrateImage: pass(), apiImage: pass(), reportImage: pass(), fetchImage: pass()}
	with := func(image string, d *ci.Decision) gates {
		g := gates{}
		for k, v := range passing {
			g[k] = v
		}
		g[image] = d
		return g
	}
	failing := decision(ci.Fail, "G404 (high severity, high confidence) at main.go:3: weak random")
	tests := []struct {
		name     string
		gates    gates
		failOpen bool
		body     []byte
		uid      string
		allowed  bool
		// wantInMessage are substrings of the denial message.
		wantInMessage []string
		warnings      int
	}{
		{name: "pod passes", gates: passing, body: fixture(t, "pod-review.json"), uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true},
		{
			name: "pod init container fails", gates: with(migrateImage, failing), body: fixture(t, "pod-review.json"),
			uid: "705ab4f5-6393-11e8-b7cc-42010a800002", wantInMessage: []string{migrateImage, "fail", "G404", "weak random"},
		},
		{
			name: "pod fails under fail-open", gates: with(webImage, failing), failOpen: true, body: fixture(t, "pod-review.json"),
			uid: "705ab4f5-6393-11e8-b7cc-42010a800002", wantInMessage: []string{webImage, "G404"},
		},
		{
			name: "pod image not scanned, fail-closed", gates: with(proxyImage, nil), body: fixture(t, "pod-review.json"),
			uid: "705ab4f5-6393-11e8-b7cc-42010a800002", wantInMessage: []string{proxyImage, "unknown", "not been scanned"},
		},
		{
			name: "pod image not scanned, fail-open", gates: with(proxyImage, nil), failOpen: true, body: fixture(t, "pod-review.json"),
			uid: "705ab4f5-6393-11e8-b7cc-42010a800002", allowed: true, warnings: 1,
		},
		{name: "deployment passes", gates: passing, body: review(t, "apps", "Deployment", fixture(t, "deployment.json")), uid: "uid-Deployment", allowed: true},
		{
			name: "deployment unknown, fail-closed", gates: with(apiImage, decision(ci.Unknown, "no scan result to evaluate")),
			body: review(t, "apps", "Deployment", fixture(t, "deployment.json")), uid: "uid-Deployment",
			wantInMessage: []string{apiImage, "unknown", "no scan result"},
		},
		{
			name: "deployment unknown, fail-open", gates: with(apiImage, decision(ci.Unknown, "no scan result to evaluate")), failOpen: true,
			body: review(t, "apps", "Deployment", fixture(t, "deployment.json")), uid: "uid-Deployment", allowed: true, warnings: 1,
		},
		{
			name: "cronjob pending, fail-closed", gates: with(reportImage, decision(ci.Pending, "scan queued")),
			body: review(t, "batch", "CronJob", fixture(t, "cronjob.json")), uid: "uid-CronJob",
			wantInMessage: []string{reportImage, "pending", "scan queued"},
		},
		{
			name: "cronjob pending, fail-open", gates: with(reportImage, decision(ci.Pending, "scan queued")), failOpen: true,
			body: review(t, "batch", "CronJob", fixture(t, "cronjob.json")), uid: "uid-CronJob", allowed: true, warnings: 1,
		},
		{
			name: "cronjob init container fails", gates: with(fetchImage, failing),
			body: review(t, "batch", "CronJob", fixture(t, "cronjob.json")), uid: "uid-CronJob",
			wantInMessage: []string{fetchImage, "G404"},
		},
		{
			name: "lookup error is unknown, fail-closed", gates: passing, body: review(t, "", "Pod", podWith(webImage, brokenImage)),
			uid: "uid-Pod", wantInMessage: []string{brokenImage, "unknown", "could not be looked up"},
		},
		{
			name: "lookup error is unknown, fail-open", gates: passing, failOpen: true, body: review(t, "", "Pod", podWith(brokenImage)),
			uid: "uid-Pod", allowed: true, warnings: 1,
		},
		{
			name: "several images denied", gates: with(webImage, failing), body: review(t, "", "Pod", podWith(webImage, "unscanned:1")),
			uid: "uid-Pod", wantInMessage: []string{webImage, "unscanned:1"},
		},
		{
			name: "unrecognised decision is not a pass", gates: with(webImage, decision("maybe", "?")), failOpen: false,
			body: review(t, "", "Pod", podWith(webImage)), uid: "uid-Pod", wantInMessage: []string{webImage, "unknown"},
		},
		{name: "service allowed", gates: gates{}, body: review(t, "", "Service", []byte(`{"spec":{}}`)), uid: "uid-Service", allowed: true},
		{name: "delete allowed", gates: gates{}, body: review(t, "", "Pod", nil), uid: "uid-Pod", allowed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := setup(t, tt.gates, tt.failOpen)
			status, raw := post(t, srv, "application/json", tt.body)
			if status != http.StatusOK {
				t.Fatalf("status = %d (%s), want 200", status, raw)
			}
			var got admission.Review
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got.APIVersion != "admission.k8s.io/v1" || got.Kind != "AdmissionReview" || got.Request != nil || got.Response == nil {
				t.Fatalf("answer %s: want an admission.k8s.io/v1 AdmissionReview with only a response", raw)
			}
			r := got.Response
			if r.UID != tt.uid {
				t.Errorf("uid = %q, want %q", r.UID, tt.uid)
			}
			if r.Allowed != tt.allowed {
				t.Errorf("allowed = %v, want %v (%s)", r.Allowed, tt.allowed, raw)
			}
			if len(r.Warnings) != tt.warnings {
				t.Errorf("warnings = %q, want %d", r.Warnings, tt.warnings)
			}
			if tt.allowed {
				if r.Result != nil {
					t.Errorf("status = %+v on an allowed request", r.Result)
				}
				return
			}
			if r.Result == nil || r.Result.Code != 403 {
				t.Fatalf("status = %+v, want code 403", r.Result)
			}
			for _, s := range tt.wantInMessage {
				if !strings.Contains(r.Result.Message, s) {
					t.Errorf("message %q does not say %q", r.Result.Message, s)
				}
			}
			if strings.Contains(r.Result.Message, "pq:") {
				t.Errorf("message %q leaks a store error", r.Result.Message)
			}
		})
	}
}

func TestHandlerMalformed(t *testing.T) {
	t.Parallel()
	srv := setup(t, gates{}, false)
	tests := []struct {
		name        string
		contentType string
		body        string
		want        int
	}{
		{"not JSON", "application/json", `apiVersion: admission.k8s.io/v1`, http.StatusBadRequest},
		{"truncated", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{`, http.StatusBadRequest},
		{"v1beta1", "application/json", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`, http.StatusBadRequest},
		{"no request", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest},
		{"no uid", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"Pod"}}}`, http.StatusBadRequest},
		{"bad object", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod"},"object":{"spec":{"containers":7}}}}`, http.StatusBadRequest},
		{"not JSON content type", "text/plain", `{}`, http.StatusUnsupportedMediaType},
		{"too large", "application/json", `{"x":"` + strings.Repeat("a", admission.MaxReviewSize) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, raw := post(t, srv, tt.contentType, []byte(tt.body))
			if status != tt.want {
				t.Fatalf("status = %d (%s), want %d", status, raw, tt.want)
			}
			var e struct{ Code, Message string }
			if err := json.Unmarshal(raw, &e); err != nil || e.Code == "" || e.Message == "" {
				t.Errorf("answer %s: want {code, message}", raw)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		t.Parallel()
		resp, err := srv.Client().Get(srv.URL + "/admission/v1/validate")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d, want 405", resp.StatusCode)
		}
	})
}

func TestHandlerConfig(t *testing.T) {
	t.Parallel()
	if _, err := admission.Handler(admission.Config{}); err == nil {
		t.Error("Handler without Gates: no error")
	}
}

// TestHandlerAmbiguous: a review that a case-sensitive reader that keeps
// the first (or last) of duplicate keys would read differently is refused,
// never admitted: here encoding/json alone would admit each of them.
func TestHandlerAmbiguous(t *testing.T) {
	t.Parallel()
	srv := setup(t, gates{webImage: pass(), apiImage: decision(ci.Fail, "critical finding")}, false)
	const head = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",`
	for _, tt := range []struct{ name, body string }{
		{"duplicate image", head + `"kind":{"kind":"Pod"},"object":{"spec":{"containers":[{"image":"` + apiImage + `","image":"` + webImage + `"}]}}}}`},
		{"image in another case", head + `"kind":{"kind":"Pod"},"object":{"spec":{"containers":[{"image":"` + apiImage + `","Image":"` + webImage + `"}]}}}}`},
		{"containers in another case", head + `"kind":{"kind":"Pod"},"object":{"spec":{"containers":[{"image":"` + apiImage + `"}],"Containers":[{"image":"` + webImage + `"}]}}}}`},
		{"spec in another case", head + `"kind":{"kind":"Pod"},"object":{"spec":{"containers":[{"image":"` + apiImage + `"}]},"SPEC":{"containers":[{"image":"` + webImage + `"}]}}}}`},
		{"duplicate kind", head + `"kind":{"kind":"Pod","kind":"ConfigMap"},"object":{"spec":{"containers":[{"image":"` + apiImage + `"}]}}}}`},
		{"kind in another case", head + `"kind":{"kind":"Pod","Kind":"ConfigMap"},"object":{"spec":{"containers":[{"image":"` + apiImage + `"}]}}}}`},
		{"duplicate object", head + `"kind":{"kind":"Pod"},"object":{"spec":{"containers":[{"image":"` + apiImage + `"}]}},"object":null}}`},
		{"object in another case", head + `"kind":{"kind":"Pod"},"object":{"spec":{"containers":[{"image":"` + apiImage + `"}]}},"Object":null}}`},
		{"duplicate request", head + `"kind":{"kind":"Pod"},"object":{"spec":{"containers":[{"image":"` + apiImage + `"}]}}},"request":{"uid":"u","kind":{"kind":"ConfigMap"}}}`},
		{"duplicate in metadata", head + `"kind":{"kind":"Pod"},"object":{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"image":"` + webImage + `"}]}}}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, raw := post(t, srv, "application/json", []byte(tt.body))
			if status != http.StatusBadRequest {
				t.Fatalf("status = %d (%s), want 400", status, raw)
			}
			var e struct{ Code, Message string }
			if err := json.Unmarshal(raw, &e); err != nil || e.Code != "BAD_REVIEW" {
				t.Errorf("answer %s: want BAD_REVIEW", raw)
			}
		})
	}
}
