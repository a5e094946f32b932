package admission

import (
	"encoding/json"

	"github.com/vigil-sec/vigil/internal/strictjson"
)

// The types below are the subset of admission.k8s.io/v1 that a validating
// webhook reads and writes, with the JSON names of k8s.io/api/admission/v1
// (AdmissionReview, AdmissionRequest, AdmissionResponse) and of
// k8s.io/apimachinery/pkg/apis/meta/v1 (Status, GroupVersionKind). See
// https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request
// They are declared here rather than imported so the module does not depend
// on the Kubernetes API machinery.

// APIVersion and Kind of an AdmissionReview.
const (
	APIVersion = "admission.k8s.io/v1"
	Kind       = "AdmissionReview"
)

// Review is an admission.k8s.io/v1 AdmissionReview.
type Review struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Request    *Request  `json:"request,omitempty"`
	Response   *Response `json:"response,omitempty"`
}

// Request is the part of an AdmissionRequest that is read.
type Request struct {
	UID         string           `json:"uid"`
	Kind        GroupVersionKind `json:"kind"`
	SubResource string           `json:"subResource,omitempty"`
	Name        string           `json:"name,omitempty"`
	Namespace   string           `json:"namespace,omitempty"`
	Operation   string           `json:"operation,omitempty"`
	// Object is the object being admitted; null for DELETE.
	Object json.RawMessage `json:"object,omitempty"`
}

// GroupVersionKind names an object's type. Group is empty for core
// objects such as Pods.
type GroupVersionKind struct {
	Group   string `json:"group"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
}

// Response is an AdmissionResponse.
type Response struct {
	UID     string  `json:"uid"`
	Allowed bool    `json:"allowed"`
	Result  *Status `json:"status,omitempty"`
	// Warnings are shown to the client (kubectl prints them).
	Warnings []string `json:"warnings,omitempty"`
}

// Status is the meta/v1 Status of a denial.
type Status struct {
	Status  string `json:"status,omitempty"` // "Failure"
	Message string `json:"message,omitempty"`
	Reason  string `json:"reason,omitempty"` // "Forbidden"
	Code    int32  `json:"code,omitempty"`   // 403
}

// DecodeReview reads an AdmissionReview as the API server wrote it, with
// case-sensitive field names: a key repeated anywhere in it, or one that
// matches a field only when case is ignored ("UID" for "uid"), is an
// error, so that the review cannot read one way here and another way in
// the API server. Other fields are ignored.
func DecodeReview(body []byte) (*Review, error) {
	var r Review
	if err := strictjson.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
