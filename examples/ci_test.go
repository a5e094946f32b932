package examples

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"sigs.k8s.io/yaml"
)

// workflow is the part of a GitHub Actions workflow the test runs.
type workflow struct {
	Env  map[string]string `json:"env"`
	Jobs map[string]struct {
		Steps []struct {
			Name string            `json:"name"`
			Run  string            `json:"run"`
			Uses string            `json:"uses"`
			Env  map[string]string `json:"env"`
		} `json:"steps"`
	} `json:"jobs"`
}

// expr replaces the workflow's ${{ … }} expressions the steps use with
// what GitHub would put there.
func expr(s string, values map[string]string) string {
	return regexp.MustCompile(`\$\{\{\s*([^}]+?)\s*\}\}`).ReplaceAllStringFunc(s, func(m string) string {
		key := regexp.MustCompile(`\$\{\{\s*([^}]+?)\s*\}\}`).FindStringSubmatch(m)[1]
		if v, ok := values[key]; ok {
			return v
		}
		return m
	})
}

func TestGitHubActionsWorkflow(t *testing.T) {
	path := filepath.Join("github-actions", "vigil.yml")
	linter, err := actionlint.NewLinter(os.Stderr, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := linter.LintFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("actionlint: %s", e.Error())
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(raw, &wf); err != nil {
		t.Fatal(err)
	}
	job, ok := wf.Jobs["vigil"]
	if !ok {
		t.Fatal(`no job "vigil": the README tells users to make the check of that name required`)
	}
	var steps []step
	uploads := false
	for _, s := range job.Steps {
		if s.Run != "" {
			steps = append(steps, step{s.Name, s.Run})
		}
		if strings.HasPrefix(s.Uses, "github/codeql-action/upload-sarif@") {
			uploads = true
		}
	}
	if !uploads {
		t.Error("the vigil job does not upload its SARIF to code scanning")
	}
	env := []string{"VIGIL_VERSION=" + wf.Env["VIGIL_VERSION"]}

	// A clean project passes every step and leaves the files the upload
	// steps send.
	clean := project(t, false)
	if i, code, log := runSteps(t, clean, steps, env); i >= 0 {
		t.Fatalf("clean project: step %q exited %d\n%s", steps[i].name, code, log)
	}
	for _, f := range []string{"vigil.sarif", "sbom.cdx.json"} {
		if fi, err := os.Stat(filepath.Join(clean, f)); err != nil || fi.Size() == 0 {
			t.Errorf("clean project: the scan left no %s for the upload step (%v)", f, err)
		}
	}

	// A finding fails the scan step with the gate's exit code, and the
	// SARIF that the "always()" upload step sends is still there.
	planted := project(t, true)
	i, code, log := runSteps(t, planted, steps, env)
	if i < 0 || steps[i].name != "Scan and gate" || code != 1 {
		t.Fatalf("planted finding: want the step %q to fail with exit 1, got step %d exit %d\n%s", "Scan and gate", i, code, log)
	}
	if !strings.Contains(log, "G402") {
		t.Errorf("the failing scan's log does not name the finding:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(planted, "vigil.sarif")); err != nil {
		t.Errorf("planted finding: no vigil.sarif to upload: %v", err)
	}

	// The deploy gate's command line is one vigil gate accepts: against a
	// server that cannot be reached it exits 3 (unreachable), not 2 (bad
	// usage).
	deploy := wf.Jobs["deploy"]
	var gate *step
	var gateEnv []string
	for _, s := range deploy.Steps {
		if strings.Contains(s.Run, "vigil gate") {
			values := map[string]string{"github.event.repository.name": "app"}
			gate = &step{s.Name, expr(s.Run, values)}
			for k := range s.Env {
				gateEnv = append(gateEnv, k+"=from-secrets")
			}
		}
	}
	if gate == nil {
		t.Fatal("the deploy job has no vigil gate step")
	}
	gateEnv = append(gateEnv, "VIGIL_SERVER=https://127.0.0.1:1", "GITHUB_SHA=0123456789abcdef0123456789abcdef01234567",
		"VIGIL_CONFIG_DIR="+t.TempDir())
	gate.script = strings.Replace(gate.script, "--wait 15m", "--wait 0", 1)
	if _, code, log := runSteps(t, clean, []step{*gate}, gateEnv); code != 3 {
		t.Errorf("deploy gate against an unreachable server: exit %d, want 3 (2 means the example's flags are wrong)\n%s", code, log)
	}
}

// gitlabJobKeywords are the job keywords of GitLab's CI/CD YAML syntax
// reference (docs.gitlab.com/ci/yaml/); a key outside them is a typo GitLab
// would refuse the pipeline for.
var gitlabJobKeywords = map[string]bool{
	"after_script": true, "allow_failure": true, "artifacts": true, "before_script": true,
	"cache": true, "coverage": true, "dast_configuration": true, "dependencies": true,
	"environment": true, "extends": true, "hooks": true, "identity": true, "id_tokens": true,
	"image": true, "inherit": true, "interruptible": true, "manual_confirmation": true,
	"needs": true, "pages": true, "parallel": true, "release": true, "resource_group": true,
	"retry": true, "rules": true, "script": true, "run": true, "secrets": true, "services": true,
	"stage": true, "tags": true, "timeout": true, "trigger": true, "variables": true, "when": true,
}

// gitlabGlobalKeywords are the top-level keywords that are not jobs.
var gitlabGlobalKeywords = map[string]bool{
	"default": true, "include": true, "stages": true, "variables": true, "workflow": true, "spec": true,
}

// gitlabReports are the artifacts:reports types GitLab documents.
var gitlabReports = map[string]bool{
	"accessibility": true, "annotations": true, "api_fuzzing": true, "browser_performance": true,
	"coverage_report": true, "codequality": true, "container_scanning": true, "coverage_fuzzing": true,
	"cyclonedx": true, "dast": true, "dependency_scanning": true, "dotenv": true, "junit": true,
	"load_performance": true, "metrics": true, "requirements": true, "repository_xray": true,
	"sast": true, "secret_detection": true, "terraform": true,
}

func TestGitLabCIPipeline(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("gitlab-ci", ".gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.UnmarshalStrict(raw, &doc); err != nil {
		t.Fatalf("not valid YAML (or a duplicate key): %v", err)
	}
	stages := map[string]bool{}
	for _, s := range doc["stages"].([]any) {
		stages[s.(string)] = true
	}
	jobs := map[string]map[string]any{}
	for key, v := range doc {
		if gitlabGlobalKeywords[key] {
			continue
		}
		job, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a job", key)
		}
		for k := range job {
			if !gitlabJobKeywords[k] {
				t.Errorf("job %s: %q is not a GitLab job keyword", key, k)
			}
		}
		if st, _ := job["stage"].(string); !stages[st] {
			t.Errorf("job %s: stage %q is not in stages", key, st)
		}
		if arts, ok := job["artifacts"].(map[string]any); ok {
			if reps, ok := arts["reports"].(map[string]any); ok {
				for r := range reps {
					if !gitlabReports[r] {
						t.Errorf("job %s: artifacts:reports:%s is not a GitLab report type", key, r)
					}
				}
			}
		}
		jobs[key] = job
	}
	scriptOf := func(name string) []step {
		job, ok := jobs[name]
		if !ok {
			t.Fatalf("no job %q", name)
		}
		var steps []step
		for _, line := range job["script"].([]any) {
			steps = append(steps, step{line.(string), line.(string)})
		}
		return steps
	}
	vars := doc["variables"].(map[string]any)
	env := []string{"VIGIL_VERSION=" + vars["VIGIL_VERSION"].(string)}

	clean := project(t, false)
	steps := scriptOf("vigil")
	if i, code, log := runSteps(t, clean, steps, env); i >= 0 {
		t.Fatalf("clean project: %q exited %d\n%s", steps[i].name, code, log)
	}
	// Every artifact and report the job declares exists after it ran.
	arts := jobs["vigil"]["artifacts"].(map[string]any)
	declared := arts["paths"].([]any)
	for _, files := range arts["reports"].(map[string]any) {
		declared = append(declared, files.([]any)...)
	}
	for _, f := range declared {
		if fi, err := os.Stat(filepath.Join(clean, f.(string))); err != nil || fi.Size() == 0 {
			t.Errorf("artifact %s: not written by the job (%v)", f, err)
		}
	}

	planted := project(t, true)
	i, code, log := runSteps(t, planted, steps, env)
	if i < 0 || !strings.HasPrefix(steps[i].script, "vigil scan") || code != 1 {
		t.Fatalf("planted finding: want the scan to fail with exit 1, got step %d exit %d\n%s", i, code, log)
	}

	deploy := scriptOf("deploy")
	var gate []step
	for _, s := range deploy {
		if strings.HasPrefix(s.script, "vigil gate") {
			gate = append(gate, step{s.name, strings.Replace(s.script, "--wait 15m", "--wait 0", 1)})
		}
	}
	if len(gate) != 1 {
		t.Fatalf("the deploy job has %d vigil gate lines, want 1", len(gate))
	}
	genv := []string{"VIGIL_SERVER=https://127.0.0.1:1", "CI_PROJECT_NAME=app",
		"CI_COMMIT_SHA=0123456789abcdef0123456789abcdef01234567", "VIGIL_CLIENT_ID=id",
		"VIGIL_CLIENT_SECRET=secret", "VIGIL_CONFIG_DIR=" + t.TempDir()}
	if _, code, log := runSteps(t, clean, gate, genv); code != 3 {
		t.Errorf("deploy gate against an unreachable server: exit %d, want 3 (2 means the example's flags are wrong)\n%s", code, log)
	}
}
