package admission_test

import (
	"fmt"

	"github.com/vigil-sec/vigil/ci/admission"
)

func ExampleImages() {
	req := &admission.Request{
		Kind:   admission.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Object: []byte(`{"spec":{"template":{"spec":{"initContainers":[{"name":"init","image":"registry.example.com/init:1"}],"containers":[{"name":"app","image":"registry.example.com/app:2"}]}}}}`),
	}
	images, err := admission.Images(req)
	fmt.Println(images, err)
	// Output: [registry.example.com/app:2 registry.example.com/init:1] <nil>
}
