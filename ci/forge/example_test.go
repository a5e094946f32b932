package forge_test

import (
	"context"
	"fmt"
	"os"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/ci/forge"
)

func ExamplePostStatus() {
	cfg := forge.Config{APIURL: "https://api.github.com", Token: os.Getenv("GITHUB_TOKEN")}
	err := forge.PostStatus(context.Background(), cfg, "git@github.com:acme/app.git", "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d", forge.Status{
		State:       forge.StateFor(ci.Fail),
		TargetURL:   "https://vigil.example.com:8443/api/v1/scans/42",
		Description: "G404 (high severity) at cmd/main.go:12",
	})
	if err != nil {
		fmt.Println(err)
	}
}

func ExampleParseRepo() {
	owner, repo, _ := forge.ParseRepo("ssh://git@gitea.example.com:2222/acme/app.git")
	fmt.Println(owner, repo, forge.StateFor(ci.Unknown))
	// Output: acme app error
}
