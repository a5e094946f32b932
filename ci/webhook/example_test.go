package webhook_test

import (
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/vigil-sec/vigil/ci/webhook"
)

func ExampleVerifyGeneric() {
	body := []byte(`{"ref":"main","commits":[{"id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"}]}`)
	// What the sender puts in X-Vigil-Signature.
	sig := "sha256=" + hex.EncodeToString(webhook.Sign("project-secret", body))

	if err := webhook.VerifyGeneric("project-secret", body, sig); err != nil {
		fmt.Println(err)
		return
	}
	push, err := webhook.ParseGeneric(http.Header{}, body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(push.Branch, push.Commits)
	fmt.Println(webhook.VerifyGeneric("other-secret", body, sig))
	// Output:
	// main [0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c]
	// bad webhook signature: X-Vigil-Signature does not match the body and the project's webhook secret
}
