package render_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/vigil-sec/vigil/reports"
	"github.com/vigil-sec/vigil/reports/render"
	"github.com/vigil-sec/vigil/reports/reporttest"
	"github.com/vigil-sec/vigil/scanner"
)

var opts = &render.Options{KeyID: "kid-3f1c", PredicateType: "https://vigil.example/report/v1"}

// renderBoth renders the summary twice in each format, checks that the
// two renders are the same bytes, and returns the PDF's path and the
// HTML.
func renderBoth(t *testing.T, rel *reports.Release, to reports.Recipient) (string, []byte) {
	t.Helper()
	var pdf, pdf2, page, page2 bytes.Buffer
	if err := render.PDF(&pdf, rel, to, opts); err != nil {
		t.Fatal(err)
	}
	if err := render.PDF(&pdf2, rel, to, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pdf.Bytes(), pdf2.Bytes()) {
		t.Error("two PDF renders of the same release differ")
	}
	if err := render.HTML(&page, rel, to, opts); err != nil {
		t.Fatal(err)
	}
	if err := render.HTML(&page2, rel, to, opts); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(page.Bytes(), page2.Bytes()) {
		t.Error("two HTML renders of the same release differ")
	}
	path := filepath.Join(t.TempDir(), "summary.pdf")
	if err := os.WriteFile(path, pdf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, page.Bytes()
}

// poppler runs one of poppler-utils' tools, skipping the test when they
// are not installed, except in CI, where .ci/run installs them.
func poppler(t *testing.T, tool string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: .ci/run should have installed poppler-utils", tool)
		}
		t.Skipf("%s not found: install poppler-utils (apt-get install -y poppler-utils)", tool)
	}
	out, err := exec.Command(tool, args...).Output()
	if err != nil {
		t.Fatalf("%s %q: %v", tool, args, err)
	}
	return string(out)
}

// pages returns the text of every page of the PDF, as pdftotext reads it,
// with runs of white space made one space.
func pages(t *testing.T, path string) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)$`).FindStringSubmatch(poppler(t, "pdfinfo", path))
	if m == nil {
		t.Fatal("pdfinfo gives no page count")
	}
	n, _ := strconv.Atoi(m[1])
	var out []string
	for p := 1; p <= n; p++ {
		text := poppler(t, "pdftotext", "-f", strconv.Itoa(p), "-l", strconv.Itoa(p), "-enc", "UTF-8", path, "-")
		out = append(out, strings.Join(strings.Fields(text), " "))
	}
	return out
}

// checkWatermark checks that every page carries the recipient and the
// ticket.
func checkWatermark(t *testing.T, texts []string, to reports.Recipient) {
	t.Helper()
	for i, text := range texts {
		if !strings.Contains(text, render.Watermark(to)) {
			t.Errorf("page %d of %d lacks the watermark %q:\n%s", i+1, len(texts), render.Watermark(to), text)
		}
	}
}

func TestSummaries(t *testing.T) {
	t.Parallel()
	rel := reporttest.Release(t)
	to := reporttest.Recipient
	repo, img := rel.SortedScans()[0], rel.SortedScans()[1]
	path, page := renderBoth(t, rel, to)

	t.Run("pdf", func(t *testing.T) {
		t.Parallel()
		texts := pages(t, path)
		if len(texts) < 6 {
			t.Errorf("%d pages, want a cover and a page for each of the 5 sections at least", len(texts))
		}
		checkWatermark(t, texts, to)
		all := strings.Join(texts, "\n")
		for _, want := range append(sections, []string{
			reporttest.ProductName + " " + reporttest.Version, "30 November 2026", "Acme Corp (tenant tnt_acme)", "Support ticket 1042",
			"Commit " + repo.Commit, reporttest.RepoURL, "Digest " + img.Digest, "Policy version 7", "sast " + repo.Result.Engines[0].Version, "sbom " + repo.Result.Engines[1].Version,
			"alice@example.com", "the number is not a secret", "2027-01-30", "expired",
			"component left-pad@1.3.0 is under WTFPL, which the policy denies",
			"vigil verify bundle.zip --key report-key.pem", opts.PredicateType, opts.KeyID,
		}...) {
			if !strings.Contains(all, want) {
				t.Errorf("the PDF lacks %q", want)
			}
		}
		if info := poppler(t, "pdfinfo", path); !strings.Contains(info, "Nov 30 12:00:00 2026") {
			t.Errorf("the PDF's dates are not the release's:\n%s", info)
		}
	})

	t.Run("pdf charts are drawn", func(t *testing.T) {
		t.Parallel()
		texts := pages(t, path)
		results := 0
		for i, text := range texts {
			if strings.Contains(text, "Findings by rule") {
				results = i + 1
			}
		}
		if results == 0 {
			t.Fatal("no page has the chart by rule")
		}
		// The charts are the only filled shapes in these colours: count
		// their pixels on the page.
		want := map[string][3]int{"open": {0xc0, 0x39, 0x2b}, "waived": {0xd6, 0x89, 0x10}, "pass": {0x1e, 0x84, 0x49}}
		counts := colours(t, path, results, want)
		for name := range want {
			if n := counts[name]; n < 200 {
				t.Errorf("page %d has %d pixels of the %s colour: the charts are not drawn", results, n, name)
			}
		}
	})

	t.Run("html", func(t *testing.T) {
		t.Parallel()
		doc := checkHTML(t, page)
		text := textOf(doc)
		for _, want := range append(sections, reporttest.ProductName, "Acme Corp", "1042", repo.Commit, img.Digest, "alice@example.com", "left-pad@1.3.0") {
			if !strings.Contains(text, want) {
				t.Errorf("the HTML lacks %q", want)
			}
		}
		if n := strings.Count(text, render.Watermark(to)); n < 3 {
			t.Errorf("the watermark is in the HTML %d times, want it in the header, the footer and across the page", n)
		}
		if n := len(findAll(doc, "svg")); n != 3 {
			t.Errorf("%d inline SVG charts, want 3", n)
		}
		if n := len(findAll(doc, "rect")); n < 20 {
			t.Errorf("%d SVG rects: the charts are not drawn", n)
		}
	})
}

// sections are the headings both summaries have.
var sections = []string{"Scope", "Repositories", "Images", "Results", "Findings by severity and state", "Findings by severity",
	"Findings by rule", "Gate decisions, last 90 days", "Open findings", "Waivers", "Components and licenses", "Licenses",
	"Denied licenses", "How to verify this bundle"}

// colours renders one page of the PDF and counts its pixels close to each
// colour.
func colours(t *testing.T, path string, page int, want map[string][3]int) map[string]int {
	t.Helper()
	out := filepath.Join(t.TempDir(), "page")
	p := strconv.Itoa(page)
	poppler(t, "pdftoppm", "-r", "50", "-f", p, "-l", p, "-singlefile", path, out)
	b, err := os.ReadFile(out + ".ppm")
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(bytes.NewReader(b))
	var w, h, maxv int
	var magic string
	if _, err := fmt.Fscan(r, &magic, &w, &h, &maxv); err != nil || magic != "P6" {
		t.Fatalf("not a binary PPM: %q %v", magic, err)
	}
	_, _ = r.ReadByte()
	px := make([]byte, w*h*3)
	if _, err := io.ReadFull(r, px); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for i := 0; i+2 < len(px); i += 3 {
		for name, c := range want {
			if near(int(px[i]), c[0]) && near(int(px[i+1]), c[1]) && near(int(px[i+2]), c[2]) {
				counts[name]++
			}
		}
	}
	return counts
}

func near(a, b int) bool { return a-b < 12 && b-a < 12 }

// checkHTML parses a summary and checks that it is self-contained: no
// script, no frames or objects, nothing loaded from elsewhere, no event
// handler attributes, and a Content-Security-Policy that forbids loading.
func checkHTML(t *testing.T, page []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	csp := false
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script", "iframe", "frame", "object", "embed", "img", "link", "base", "form", "audio", "video", "source":
			t.Errorf("the summary has a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			k := strings.ToLower(a.Key)
			switch {
			case strings.HasPrefix(k, "on"):
				t.Errorf("<%s> has an event handler %s=%q", n.Data, a.Key, a.Val)
			case k == "src" || k == "srcset" || k == "action" || k == "formaction" || k == "xlink:href" || k == "poster":
				t.Errorf("<%s> loads %s=%q", n.Data, a.Key, a.Val)
			case k == "href" && !strings.HasPrefix(a.Val, "#"):
				t.Errorf("<%s> links out: href=%q", n.Data, a.Val)
			case k == "http-equiv" && strings.EqualFold(a.Val, "Content-Security-Policy"):
				csp = strings.Contains(attr(n, "content"), "default-src 'none'")
			}
		}
		if n.Data == "style" && n.FirstChild != nil {
			css := strings.ToLower(n.FirstChild.Data)
			if strings.Contains(css, "url(") || strings.Contains(css, "@import") {
				t.Error("the stylesheet loads something")
			}
		}
	})
	if !csp {
		t.Error("the summary has no Content-Security-Policy with default-src 'none'")
	}
	return doc
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func findAll(doc *html.Node, tag string) []*html.Node {
	var out []*html.Node
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
	})
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is the text of the document's body, runs of white space made one
// space.
func textOf(doc *html.Node) string {
	var b strings.Builder
	walk(doc, func(n *html.Node) {
		if n.Type == html.TextNode && (n.Parent == nil || n.Parent.Data != "style" && n.Parent.Data != "title") {
			b.WriteString(n.Data + " ")
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

// TestHostileNames renders names and messages that are HTML: a tenant
// named like a script, a finding's message and a project name with
// markup. The HTML shows them as text; the PDF prints them as they are.
func TestHostileNames(t *testing.T) {
	t.Parallel()
	rel := reporttest.Small()
	to := reports.Recipient{TenantID: `t"1`, TenantName: `<script>alert(1)</script>`, Ticket: `7<b>`}
	repo := &rel.Scans[1]
	repo.Project = `api"><svg onload=alert(2)>`
	repo.Result.Findings[0].Message = `<img src=x onerror=alert(3)> and </td></tr></table><script>alert(4)</script>`
	repo.Waivers[0].Reason = `<a href="https://evil.example/">click</a>`

	path, page := renderBoth(t, rel, to)
	doc := checkHTML(t, page)
	text := textOf(doc)
	for _, want := range []string{to.TenantName, repo.Project, repo.Result.Findings[0].Message, repo.Waivers[0].Reason} {
		if !strings.Contains(text, want) {
			t.Errorf("the HTML does not show %q as text", want)
		}
	}
	if title := findAll(doc, "title")[0]; !strings.Contains(title.FirstChild.Data, to.TenantName) {
		t.Errorf("<title> = %q", title.FirstChild.Data)
	}
	texts := pages(t, path)
	checkWatermark(t, texts, to)
	if !strings.Contains(strings.Join(texts, "\n"), repo.Result.Findings[0].Message) {
		t.Error("the PDF does not print the finding's message as it is")
	}
}

// TestNamesInAnyScript renders a tenant named in several scripts and with
// an emoji, which the PDF's fonts do not have.
func TestNamesInAnyScript(t *testing.T) {
	t.Parallel()
	to := reports.Recipient{TenantID: "tnt_1", TenantName: "Ünïcødé Ωμέγα Привет 🚀", Ticket: "T-9"}
	path, page := renderBoth(t, reporttest.Small(), to)
	if text := textOf(checkHTML(t, page)); !strings.Contains(text, to.TenantName) {
		t.Errorf("the HTML lacks %q", to.TenantName)
	}
	want := reports.Recipient{TenantName: "Ünïcødé Ωμέγα Привет \uFFFD", Ticket: to.Ticket}
	checkWatermark(t, pages(t, path), want)
}

// TestSparseReleases renders releases with little in them: each says so
// rather than drawing empty tables.
func TestSparseReleases(t *testing.T) {
	t.Parallel()
	to := reporttest.Recipient
	for name, tc := range map[string]struct {
		edit func(*reports.Release)
		want []string
	}{
		"no findings": {
			func(r *reports.Release) { r.Scans[1].Result.Findings = nil },
			[]string{"No findings", "No open findings", "0 findings, 0 open"},
		},
		"no SBOM": {
			func(r *reports.Release) {
				for i := range r.Scans {
					r.Scans[i].Result.SBOM = nil
				}
			},
			[]string{"No software bill of materials in this release.", "0 components"},
		},
		"an image only": {
			func(r *reports.Release) { r.Scans = r.Scans[:1] },
			[]string{"No repositories in this release.", "No findings", "No waivers.", "No gate decisions recorded.", "1 image"},
		},
		"nothing": {
			func(r *reports.Release) { r.Scans = nil },
			[]string{"No repositories in this release.", "No images in this release.", "No gate decisions in the last 90 days"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rel := reporttest.Small()
			tc.edit(rel)
			path, page := renderBoth(t, rel, to)
			texts := pages(t, path)
			checkWatermark(t, texts, to)
			pdfText := strings.Join(texts, "\n")
			htmlText := textOf(checkHTML(t, page))
			for _, want := range append(tc.want, sections[0], sections[3], sections[9], sections[10], sections[13]) {
				if !strings.Contains(pdfText, want) {
					t.Errorf("the PDF lacks %q", want)
				}
				if !strings.Contains(htmlText, want) {
					t.Errorf("the HTML lacks %q", want)
				}
			}
		})
	}
}

func TestRefusesWhatItCannotName(t *testing.T) {
	t.Parallel()
	for _, to := range []reports.Recipient{{TenantName: "Acme"}, {Ticket: "1"}} {
		for name, r := range map[string]func() error{
			"pdf":  func() error { return render.PDF(&bytes.Buffer{}, reporttest.Small(), to, nil) },
			"html": func() error { return render.HTML(&bytes.Buffer{}, reporttest.Small(), to, nil) },
		} {
			if err := r(); !errors.Is(err, scanner.ErrUsage) {
				t.Errorf("%s for %+v: %v, want a usage error", name, to, err)
			}
		}
	}
	rel := reporttest.Small()
	rel.Version = ""
	if err := render.PDF(&bytes.Buffer{}, rel, reporttest.Recipient, nil); !errors.Is(err, scanner.ErrUsage) {
		t.Errorf("a release without a version: %v, want a usage error", err)
	}
}
