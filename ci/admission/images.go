package admission

import (
	"encoding/json"
	"fmt"

	"github.com/vigil-sec/vigil/internal/strictjson"
)

// podSpec holds the containers of a core/v1 PodSpec.
type podSpec struct {
	Containers          []container `json:"containers"`
	InitContainers      []container `json:"initContainers"`
	EphemeralContainers []container `json:"ephemeralContainers"`
}

type container struct {
	Image string `json:"image"`
}

type podTemplate struct {
	Spec podSpec `json:"spec"`
}

// specOf maps an admitted kind to the function that finds its PodSpec.
var specOf = map[GroupVersionKind]func(json.RawMessage) (*podSpec, error){
	{Kind: "Pod"}: func(raw json.RawMessage) (*podSpec, error) {
		var o struct {
			Spec podSpec `json:"spec"`
		}
		err := strictjson.Unmarshal(raw, &o)
		return &o.Spec, err
	},
	{Kind: "ReplicationController"}:      templateSpec,
	{Group: "apps", Kind: "Deployment"}:  templateSpec,
	{Group: "apps", Kind: "StatefulSet"}: templateSpec,
	{Group: "apps", Kind: "DaemonSet"}:   templateSpec,
	{Group: "apps", Kind: "ReplicaSet"}:  templateSpec,
	{Group: "batch", Kind: "Job"}:        templateSpec,
	{Group: "batch", Kind: "CronJob"}: func(raw json.RawMessage) (*podSpec, error) {
		var o struct {
			Spec struct {
				JobTemplate struct {
					Spec struct {
						Template podTemplate `json:"template"`
					} `json:"spec"`
				} `json:"jobTemplate"`
			} `json:"spec"`
		}
		err := strictjson.Unmarshal(raw, &o)
		return &o.Spec.JobTemplate.Spec.Template.Spec, err
	},
}

// templateSpec finds the PodSpec of a workload: spec.template.spec.
func templateSpec(raw json.RawMessage) (*podSpec, error) {
	var o struct {
		Spec struct {
			Template podTemplate `json:"template"`
		} `json:"spec"`
	}
	err := strictjson.Unmarshal(raw, &o)
	return &o.Spec.Template.Spec, err
}

// Images lists the container images of the object in an admission
// request, each once, in the order of containers, initContainers and
// ephemeralContainers. It covers Pods, ReplicationControllers, and the pod
// templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and
// CronJobs; for any other kind, and for requests without an object (a
// DELETE), it returns nothing. An object that cannot be decoded is an
// error.
func Images(req *Request) ([]string, error) {
	find, ok := specOf[GroupVersionKind{Group: req.Kind.Group, Kind: req.Kind.Kind}]
	if !ok || len(req.Object) == 0 || string(req.Object) == "null" {
		return nil, nil
	}
	spec, err := find(req.Object)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Kind.Kind, req.Name, err)
	}
	var images []string
	seen := make(map[string]bool)
	for _, list := range [][]container{spec.Containers, spec.InitContainers, spec.EphemeralContainers} {
		for _, c := range list {
			if c.Image != "" && !seen[c.Image] {
				seen[c.Image] = true
				images = append(images, c.Image)
			}
		}
	}
	return images, nil
}
