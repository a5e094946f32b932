package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type project struct {
	Name          string `json:"name"`
	DefaultBranch string `json:"default_branch"`
	Retention     int    `json:"retention"`
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int // 0: no error
		wantCode    string
		wantInMsg   string
	}{
		{name: "good", contentType: "application/json; charset=utf-8", body: `{"name":"api","default_branch":"main"}` + "\n"},
		{name: "json suffix", contentType: "application/merge-patch+json", body: `{"name":"api"}`},
		{name: "unknown field", contentType: "application/json", body: `{"name":"api","branch":"main"}`,
			wantStatus: 400, wantCode: CodeUnknownField, wantInMsg: `"branch"`},
		{name: "duplicate key", contentType: "application/json", body: `{"name":"evil","name":"api"}`,
			wantStatus: 400, wantCode: CodeDuplicateKey, wantInMsg: `duplicate key "name"`},
		{name: "duplicate key escaped", contentType: "application/json", body: `{"name":"api","\u006eame":"api"}`,
			wantStatus: 400, wantCode: CodeDuplicateKey, wantInMsg: `duplicate key "name"`},
		{name: "key in another case", contentType: "application/json", body: `{"Name":"api"}`,
			wantStatus: 400, wantCode: CodeUnknownField, wantInMsg: `did you mean "name"`},
		{name: "key in another case after the field", contentType: "application/json", body: `{"name":"api","NAME":"evil"}`,
			wantStatus: 400, wantCode: CodeUnknownField, wantInMsg: `"NAME"`},
		{name: "trailing garbage", contentType: "application/json", body: `{"name":"api"} xyz`,
			wantStatus: 400, wantCode: CodeInvalidJSON, wantInMsg: "offset 15"},
		{name: "second value", contentType: "application/json", body: `{"name":"api"}{}`,
			wantStatus: 400, wantCode: CodeInvalidJSON, wantInMsg: "after the JSON value"},
		{name: "syntax error", contentType: "application/json", body: `{"name": api}`,
			wantStatus: 400, wantCode: CodeInvalidJSON, wantInMsg: "offset"},
		{name: "truncated", contentType: "application/json", body: `{"name": "api"`,
			wantStatus: 400, wantCode: CodeInvalidJSON, wantInMsg: "ends"},
		{name: "wrong type", contentType: "application/json", body: `{"retention": "forever"}`,
			wantStatus: 400, wantCode: CodeInvalidField, wantInMsg: `"retention" must be an integer`},
		{name: "not an object", contentType: "application/json", body: `[1]`,
			wantStatus: 400, wantCode: CodeInvalidJSON, wantInMsg: "must be an object"},
		{name: "empty", contentType: "application/json", body: ``,
			wantStatus: 400, wantCode: CodeInvalidJSON, wantInMsg: "empty"},
		{name: "too large", contentType: "application/json", body: `{"name":"` + strings.Repeat("a", 200) + `"}`,
			wantStatus: 413, wantCode: CodeBodyTooLarge, wantInMsg: "100 bytes"},
		{name: "wrong content type", contentType: "text/plain", body: `{"name":"api"}`,
			wantStatus: 415, wantCode: CodeUnsupportedMediaType, wantInMsg: "application/json"},
		{name: "no content type", body: `{"name":"api"}`,
			wantStatus: 415, wantCode: CodeUnsupportedMediaType, wantInMsg: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/api/v1/projects", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var got project
			err := DecodeJSON(httptest.NewRecorder(), r, &got, 100)
			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("DecodeJSON: %v", err)
				}
				if got.Name != "api" {
					t.Errorf("decoded %+v, want name api", got)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("DecodeJSON error = %v (%T), want *Error", err, err)
			}
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantInMsg) {
				t.Errorf("DecodeJSON error = %d %s %q, want %d %s containing %q",
					e.Status, e.Code, e.Message, tt.wantStatus, tt.wantCode, tt.wantInMsg)
			}
		})
	}
}

// A body without Content-Length (chunked) is cut at the limit while read.
func TestDecodeJSONChunkedTooLarge(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name":"`+strings.Repeat("a", 200)+`"}`))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	var e *Error
	if err := DecodeJSON(httptest.NewRecorder(), r, &project{}, 100); !errors.As(err, &e) || e.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("DecodeJSON = %v, want 413", err)
	}
}

func TestWriteErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantBody string
		wantCode int
	}{
		{"typed", fmt.Errorf("create project: %w", &Error{Status: 409, Code: "CONFLICT", Message: "project api exists"}),
			`{"code":"CONFLICT","message":"project api exists"}`, 409},
		{"other", errors.New(`pq: duplicate key value violates unique constraint "projects_name_key"`),
			`{"code":"INTERNAL","message":"internal error"}`, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			WriteErr(w, tt.err)
			if got := strings.TrimSpace(w.Body.String()); w.Code != tt.wantCode || got != tt.wantBody {
				t.Errorf("WriteErr = %d %s, want %d %s", w.Code, got, tt.wantCode, tt.wantBody)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestWriteJSONUnencodable(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusOK, map[string]any{"f": func() {}})
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 500 || body.Code != CodeInternal {
		t.Errorf("WriteJSON of a func = %d %s, want 500 INTERNAL", w.Code, w.Body)
	}
}
