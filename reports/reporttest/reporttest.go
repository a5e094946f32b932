// Package reporttest builds a real release for the tests of the report
// writers: a git repository scanned by the real sast and sbom engines, an
// image served by a loopback registry and catalogued by the real sbom
// engine, each judged by ci.Evaluate under a policy with waivers (one
// active, one expired) and a denied license, as the pipeline does.
//
//	rel := reporttest.Release(t)
//	err := format.WriteCycloneDX(w, rel)
package reporttest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/ci"
	"github.com/vigil-sec/vigil/internal/gittest"
	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/image"
	"github.com/vigil-sec/vigil/scanner/image/imagetest"
	"github.com/vigil-sec/vigil/scanner/sast"
	"github.com/vigil-sec/vigil/scanner/sbom"
)

// Created is when the fixture release was cut.
var Created = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// Recipient is the fixture's recipient.
var Recipient = reports.Recipient{TenantID: "tnt_acme", TenantName: "Acme Corp", Ticket: "1042"}

// The fixture's product, project and repository.
const (
	ProductID   = "prod_vigil_edge"
	ProductName = "Vigil Edge"
	Version     = "1.4.0"
	Project     = "web"
	RepoURL     = "https://git.example.com/acme/web.git"
)

// DeniedLicense is the license the repository's policy denies: the npm
// package left-pad is under it.
const DeniedLicense = "WTFPL"

// Files are the repository's files: Go code that gosec flags (weak
// random, weak hash, a command built from input) and an npm lockfile
// whose packages the sbom engine finds.
var Files = map[string]string{
	"go.mod": "module example.com/web\n\ngo 1.22\n",
	"main.go": `// Command web is a fixture that gosec flags on purpose.
package main

import (
	"crypto/md5"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
)

func main() {
	out, _ := exec.Command(os.Args[1], "--version").Output()
	fmt.Printf("%x %d\n", md5.Sum(out), rand.Intn(100))
}
`,
	"package.json": `{"name": "web-ui", "version": "1.0.0", "private": true, "license": "MIT",
  "dependencies": {"left-pad": "^1.3.0", "ms": "^2.1.3"}}
`,
	"package-lock.json": `{
  "name": "web-ui", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
  "packages": {
    "": {"name": "web-ui", "version": "1.0.0", "license": "MIT", "dependencies": {"left-pad": "^1.3.0", "ms": "^2.1.3"}},
    "node_modules/left-pad": {"version": "1.3.0", "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz", "license": "WTFPL"},
    "node_modules/ms": {"version": "2.1.3", "resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz", "license": "MIT"}
  }
}
`,
}

// Release scans the fixture repository and image and returns a release
// of both, cut at Created. It fails the test on any error.
func Release(t testing.TB) *reports.Release {
	t.Helper()
	ctx := context.Background()
	return &reports.Release{
		ProductID:   ProductID,
		ProductName: ProductName,
		Version:     Version,
		Created:     Created,
		Scans:       []reports.ReleaseScan{repositoryScan(ctx, t), imageScan(ctx, t)},
	}
}

func repositoryScan(ctx context.Context, t testing.TB) reports.ReleaseScan {
	repo := gittest.New(t)
	commit := repo.Commit("fixture", Files)
	target := &scanner.Target{Kind: scanner.KindGit, Ref: RepoURL, Path: repo.Dir, Commit: commit}
	res, err := scanner.Scan(ctx, target, []scanner.Engine{sast.Engine(nil), sbom.Engine(nil)}, scanner.Options{})
	if err != nil {
		t.Fatalf("scanning the fixture repository: %v", err)
	}
	if len(res.Findings) == 0 {
		t.Fatal("the sast engine found nothing in the fixture repository")
	}
	policy := ci.DefaultPolicy()
	policy.Licenses.Deny = []string{DeniedLicense}
	policy.Waivers = []ci.Waiver{
		{Rule: "G404", Owner: "alice@example.com", Reason: "the number is not a secret", Expires: Created.AddDate(0, 2, 0)},
		{Rule: "G204", Path: "main.go", Owner: "bob@example.com", Reason: "lapsed exception", Expires: Created.AddDate(0, -1, 0)},
	}
	gate := ci.Evaluate(res, policy, nil, Created)
	return reports.ReleaseScan{
		Project: Project, Repository: RepoURL, Commit: commit,
		PolicyVersion: "7",
		Result:        res,
		Gate:          gate,
		Waivers:       policy.Waivers,
		GateHistory:   History(Created, 120, []string{ci.Pass, ci.Fail, ci.Pass, ci.Pending}),
	}
}

func imageScan(ctx context.Context, t testing.TB) reports.ReleaseScan {
	fx := imagetest.New(t)
	target, err := image.Resolve(ctx, fx.Ref, image.Options{})
	if err != nil {
		t.Fatalf("resolving the fixture image: %v", err)
	}
	res, err := scanner.Scan(ctx, target, []scanner.Engine{sbom.Engine(nil)}, scanner.Options{})
	if err != nil {
		t.Fatalf("scanning the fixture image: %v", err)
	}
	gate := ci.Evaluate(res, ci.DefaultPolicy(), nil, Created)
	return reports.ReleaseScan{
		Image: fx.Ref, Digest: target.Digest,
		PolicyVersion: "3",
		Result:        res,
		Gate:          gate,
		GateHistory:   History(Created, 60, []string{ci.Pass}),
	}
}

// History makes one gate decision a day for the days before end, cycling
// through decisions.
func History(end time.Time, days int, decisions []string) []reports.GatePoint {
	var out []reports.GatePoint
	for d := days; d >= 1; d-- {
		out = append(out, reports.GatePoint{
			At:       end.AddDate(0, 0, -d).Add(time.Duration(d%5) * time.Hour),
			Decision: decisions[d%len(decisions)],
		})
	}
	return out
}

// Small is a release built from data, without scanning: an image with
// an SBOM (a package found twice, free-text licenses) and a repository
// named by an scp-like address with a finding whose message holds HTML
// and a waiver.
func Small() *reports.Release {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return &reports.Release{
		ProductID: "p1", ProductName: "Product <One>", Version: "2.0", Created: created,
		Scans: []reports.ReleaseScan{
			{
				Image: "registry.example.com/team/app:2.0", Digest: "sha256:" + strings.Repeat("b", 64), PolicyVersion: "1",
				Result: &scanner.Result{
					Target:    scanner.TargetInfo{Kind: scanner.KindImage, Ref: "registry.example.com/team/app:2.0", Platform: "linux/amd64"},
					StartedAt: created.Add(-time.Hour), FinishedAt: created.Add(-59 * time.Minute),
					Engines: []scanner.EngineRun{{ID: "sbom", Version: "v1.57.1"}},
					SBOM: &scanner.SBOM{Components: []scanner.Component{
						{Name: "zlib1g", Version: "1.2", Type: "deb", PURL: "pkg:deb/debian/zlib1g@1.2", Licenses: []string{"Zlib"}, Layer: "sha256:" + strings.Repeat("c", 64)},
						{Name: "zlib1g", Version: "1.2", Type: "deb", PURL: "pkg:deb/debian/zlib1g@1.2", Licenses: []string{"Zlib"}, Locations: []string{"/other"}},
						{Name: "tool", Version: "1", Type: "binary", Licenses: []string{"Apache 2.0", "MIT OR GPL-2.0-only"}},
						{Name: "odd", Version: "1", Type: "binary", Licenses: []string{"Apache_2.0"}},
					}},
				},
			},
			{
				Project: "api", Repository: "git@git.example.com:team/api.git", Commit: strings.Repeat("a", 40), PolicyVersion: "4",
				Result: &scanner.Result{
					Target:    scanner.TargetInfo{Kind: scanner.KindGit, Ref: "git@git.example.com:team/api.git", Commit: strings.Repeat("a", 40)},
					StartedAt: created.Add(-2 * time.Hour), FinishedAt: created.Add(-119 * time.Minute),
					Engines: []scanner.EngineRun{{ID: "sast", Version: "v2.30.0"}},
					Findings: []scanner.Finding{{Engine: "sast", RuleID: "G101", Message: "Potential <b>hardcoded</b> credentials",
						Severity: scanner.LevelHigh, Confidence: scanner.LevelLow, File: "cfg.go", Line: 3, Fingerprint: "fp"}},
				},
				Waivers: []ci.Waiver{{Fingerprint: "fp", Owner: "o", Reason: "r", Expires: created}},
			},
		},
	}
}

// Describe is a one-line account of a release for test logs.
func Describe(rel *reports.Release) string {
	s := fmt.Sprintf("%s %s:", rel.ProductID, rel.Version)
	for _, sc := range rel.SortedScans() {
		s += fmt.Sprintf(" [%s: %d findings, %d components]", sc.Name(), len(sc.Result.Findings), len(sc.Components()))
	}
	return s
}
