package ci

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"go.yaml.in/yaml/v3"

	"github.com/vigil-sec/vigil/scanner"
)

// MaxPolicySize bounds how much of a policy file LoadPolicy reads.
const MaxPolicySize = 1 << 20 // 1 MiB

// dateLayout is how waiver expiry dates are written.
const dateLayout = "2006-01-02"

// Policy decides which findings and components fail the gate. Build one
// with DefaultPolicy, or read one with LoadPolicy or ParsePolicy, which
// start from the defaults and override what the file sets.
type Policy struct {
	// Source names where the policy came from (a file path), for messages.
	Source string `json:"source,omitempty"`
	// FailOn holds the thresholds: a finding fails the gate when both its
	// severity and its confidence are at or above them. A zero Level is
	// below every level, so a zero threshold fails on every finding.
	FailOn Thresholds `json:"fail_on"`
	// Rules.Exclude lists rule IDs whose findings are dropped.
	Rules RuleFilter `json:"rules"`
	// Paths.Exclude lists doublestar globs; findings in matching files
	// are dropped.
	Paths PathFilter `json:"paths"`
	// Licenses.Deny lists SPDX license IDs that fail the gate.
	Licenses LicensePolicy `json:"licenses"`
	// Waivers suppress findings until they expire.
	Waivers []Waiver `json:"waivers,omitempty"`
	// Repository says how a server's policy treats the repository's
	// policy file (see Combine).
	Repository RepositoryRules `json:"repository,omitzero"`
	// Unanalysed says what a part of the target that an engine could not
	// analyse (a Go module that does not load) does to the gate:
	// UnanalysedFail fails it, UnanalysedWarn lets it pass with a
	// NOT_ANALYSED reason beside PASSED. Empty, the default, fails.
	Unanalysed string `json:"unanalysed,omitempty"`
}

// What a part nobody analysed does to the gate (Policy.Unanalysed).
const (
	UnanalysedFail = "fail"
	UnanalysedWarn = "warn"
)

// Thresholds are the levels at or above which a finding fails the gate.
type Thresholds struct {
	Severity   scanner.Level `json:"severity"`
	Confidence scanner.Level `json:"confidence"`
}

// RuleFilter excludes findings by rule ID (compared case-insensitively).
type RuleFilter struct {
	Exclude []string `json:"exclude,omitempty"`
}

// PathFilter excludes findings by file, matched with doublestar globs
// against the finding's slash-separated path relative to the target root.
type PathFilter struct {
	Exclude []string `json:"exclude,omitempty"`
}

// LicensePolicy lists denied licenses. A component fails the gate when any
// SPDX license ID in any of its declared licenses is denied; see Evaluate.
type LicensePolicy struct {
	Deny []string `json:"deny,omitempty"`
}

// Waiver suppresses findings, by rule (and optionally a path glob) or by
// fingerprint, until the end of its Expires day. When a waiver sets both a
// fingerprint and a rule, a finding must match both.
type Waiver struct {
	Rule string `json:"rule,omitempty"`
	// Path is a doublestar glob; empty means every path. It only narrows
	// a waiver that also names a rule or a fingerprint.
	Path        string `json:"path,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Reason      string `json:"reason"`
	Owner       string `json:"owner"`
	// Expires is the last day the waiver applies, at midnight UTC: the
	// waiver applies while now is before the midnight that ends that day.
	Expires time.Time `json:"expires"`
	// Line is where the waiver starts in the policy file (0 if unknown).
	Line int `json:"-"`
	// Source names the policy file the waiver comes from when it differs
	// from its Policy's (see Combine); "" means the Policy's.
	Source string `json:"-"`
}

// Active reports whether the waiver still applies at now.
func (w *Waiver) Active(now time.Time) bool {
	return now.Before(w.end())
}

// end is the first instant at which the waiver no longer applies.
func (w *Waiver) end() time.Time {
	y, m, d := w.Expires.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// expiresDay is Expires as YYYY-MM-DD.
func (w *Waiver) expiresDay() string { return w.Expires.UTC().Format(dateLayout) }

// DefaultPolicy fails on findings of high severity and at least low
// confidence and on any part of the target that was not analysed, and
// excludes, denies and waives nothing.
func DefaultPolicy() *Policy {
	return &Policy{FailOn: Thresholds{Severity: scanner.LevelHigh, Confidence: scanner.LevelLow}}
}

// PolicyError is a policy file that cannot be used: it names the file, the
// line and the field at fault. It is a usage error:
// errors.Is(err, scanner.ErrUsage) holds.
type PolicyError struct {
	File  string
	Line  int    // 0 when the problem is not on one line (such as a missing file)
	Field string // a path into the policy ("waivers[1].owner"); empty for a syntax error
	Msg   string
	// Err is the underlying error, if any (such as fs.ErrNotExist).
	Err error
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("policy ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes every PolicyError a scanner.ErrUsage.
func (e *PolicyError) Is(target error) bool { return target == scanner.ErrUsage }

// Unwrap returns the underlying error, if any.
func (e *PolicyError) Unwrap() error { return e.Err }

// LoadPolicy reads and validates the policy file at path.
func LoadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &PolicyError{File: path, Msg: "cannot read: " + pathErrMsg(err), Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPolicySize+1))
	if err != nil {
		return nil, &PolicyError{File: path, Msg: "cannot read: " + pathErrMsg(err), Err: err}
	}
	if len(data) > MaxPolicySize {
		return nil, &PolicyError{File: path, Msg: fmt.Sprintf("larger than %d bytes", MaxPolicySize)}
	}
	return ParsePolicy(path, data)
}

// pathErrMsg drops the path that an *fs.PathError repeats.
func pathErrMsg(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// ParsePolicy reads a policy from YAML; name is the file it came from and
// becomes the policy's Source. Fields the document omits keep their
// defaults. Every problem is a *PolicyError.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	p := &parser{file: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) { // an empty file: the defaults
			pol := DefaultPolicy()
			pol.Source = name
			return pol, nil
		}
		return nil, p.yamlErr(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &PolicyError{File: name, Line: extra.Line, Msg: "more than one YAML document; want one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, p.yamlErr(err)
	}
	pol, err := p.policy(&doc)
	if err != nil {
		return nil, err
	}
	pol.Source = name
	return pol, nil
}

// parser turns a YAML node tree into a Policy, naming the line and field
// of each problem.
type parser struct {
	file string
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlErr converts an error from the YAML decoder, taking the line from
// its message.
func (p *parser) yamlErr(err error) *PolicyError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		line, _ = strconv.Atoi(msg[m[2]:m[3]])
		// Drop the "line N: " the message carries, since Error adds it.
		msg = strings.TrimPrefix(msg[:m[0]]+msg[m[1]:], ": ")
	}
	return &PolicyError{File: p.file, Line: line, Msg: "invalid YAML: " + msg, Err: err}
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) *PolicyError {
	return &PolicyError{File: p.file, Line: n.Line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) policy(doc *yaml.Node) (*Policy, error) {
	pol := DefaultPolicy()
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return pol, nil
		}
		root = root.Content[0]
	}
	root = deref(root)
	if isNull(root) {
		return pol, nil
	}
	fields, err := p.mapping(root, "", "fail_on", "rules", "paths", "licenses", "waivers", "repository", "unanalysed")
	if err != nil {
		return nil, err
	}
	if n := fields["fail_on"]; n != nil {
		if err := p.thresholds(n, &pol.FailOn); err != nil {
			return nil, err
		}
	}
	if n := fields["rules"]; n != nil {
		if pol.Rules.Exclude, err = p.excludeList(n, "rules", p.ruleID); err != nil {
			return nil, err
		}
	}
	if n := fields["paths"]; n != nil {
		if pol.Paths.Exclude, err = p.excludeList(n, "paths", p.glob); err != nil {
			return nil, err
		}
	}
	if n := fields["licenses"]; n != nil {
		lf, err := p.mapping(n, "licenses", "deny")
		if err != nil {
			return nil, err
		}
		if d := lf["deny"]; d != nil {
			if pol.Licenses.Deny, err = p.stringList(d, "licenses.deny", p.licenseID); err != nil {
				return nil, err
			}
		}
	}
	if n := fields["waivers"]; n != nil {
		if pol.Waivers, err = p.waivers(n); err != nil {
			return nil, err
		}
	}
	if n := fields["repository"]; n != nil {
		if err := p.repository(n, &pol.Repository); err != nil {
			return nil, err
		}
	}
	if n := fields["unanalysed"]; n != nil {
		v, err := p.scalar(n, "unanalysed")
		if err != nil {
			return nil, err
		}
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case UnanalysedFail, UnanalysedWarn:
			pol.Unanalysed = v
		case "":
		default:
			return nil, p.errf(deref(n), "unanalysed", "%q: want %s or %s", v, UnanalysedFail, UnanalysedWarn)
		}
	}
	return pol, nil
}

func (p *parser) thresholds(n *yaml.Node, t *Thresholds) error {
	fields, err := p.mapping(n, "fail_on", "severity", "confidence")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		dst  *scanner.Level
	}{{"severity", &t.Severity}, {"confidence", &t.Confidence}} {
		v := fields[f.name]
		if v == nil {
			continue
		}
		field := "fail_on." + f.name
		s, err := p.scalar(v, field)
		if err != nil {
			return err
		}
		l, err := scanner.ParseLevel(s)
		if err != nil {
			return p.errf(v, field, "%v", err)
		}
		*f.dst = l
	}
	return nil
}

// excludeList reads a {exclude: [...]} mapping.
func (p *parser) excludeList(n *yaml.Node, field string, check func(n *yaml.Node, field, v string) error) ([]string, error) {
	fields, err := p.mapping(n, field, "exclude")
	if err != nil {
		return nil, err
	}
	if e := fields["exclude"]; e != nil {
		return p.stringList(e, field+".exclude", check)
	}
	return nil, nil
}

func (p *parser) ruleID(n *yaml.Node, field, v string) error {
	if strings.TrimSpace(v) == "" {
		return p.errf(n, field, "empty rule ID")
	}
	return nil
}

func (p *parser) glob(n *yaml.Node, field, v string) error {
	if v == "" {
		return p.errf(n, field, "empty glob")
	}
	if !doublestar.ValidatePattern(v) {
		return p.errf(n, field, "invalid glob %q", v)
	}
	return nil
}

func (p *parser) licenseID(n *yaml.Node, field, v string) error {
	if v == "" || strings.ContainsAny(v, " \t()") {
		return p.errf(n, field, "%q is not a single SPDX license ID", v)
	}
	return nil
}

func (p *parser) waivers(n *yaml.Node) ([]Waiver, error) {
	n = deref(n)
	if isNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, "waivers", "want a list of waivers")
	}
	out := make([]Waiver, 0, len(n.Content))
	for i, item := range n.Content {
		w, err := p.waiver(deref(item), fmt.Sprintf("waivers[%d]", i))
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

func (p *parser) waiver(n *yaml.Node, field string) (Waiver, error) {
	w := Waiver{Line: n.Line}
	fields, err := p.mapping(n, field, "rule", "path", "fingerprint", "reason", "owner", "expires")
	if err != nil {
		return w, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"rule", &w.Rule}, {"path", &w.Path}, {"fingerprint", &w.Fingerprint}, {"reason", &w.Reason}, {"owner", &w.Owner}} {
		if v := fields[f.name]; v != nil {
			s, err := p.scalar(v, field+"."+f.name)
			if err != nil {
				return w, err
			}
			*f.dst = strings.TrimSpace(s)
		}
	}
	if w.Path != "" {
		if err := p.glob(fields["path"], field+".path", w.Path); err != nil {
			return w, err
		}
	}
	if w.Rule == "" && w.Fingerprint == "" {
		return w, p.errf(n, field, "want a rule or a fingerprint")
	}
	if w.Reason == "" {
		return w, p.errf(n, field+".reason", "required")
	}
	if w.Owner == "" {
		return w, p.errf(n, field+".owner", "required")
	}
	v := fields["expires"]
	var s string
	if v != nil {
		if s, err = p.scalar(v, field+".expires"); err != nil {
			return w, err
		}
	}
	if s = strings.TrimSpace(s); s == "" {
		return w, p.errf(n, field+".expires", "required")
	}
	t, err := time.Parse(dateLayout, s)
	if err != nil || len(s) != len(dateLayout) {
		return w, p.errf(v, field+".expires", "invalid date %q: want YYYY-MM-DD", s)
	}
	w.Expires = t
	return w, nil
}

// mapping checks that n is a mapping whose keys are all known and unique,
// and returns the value nodes by key. A null node is an empty mapping.
func (p *parser) mapping(n *yaml.Node, field string, known ...string) (map[string]*yaml.Node, error) {
	n = deref(n)
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	keyLine := make(map[string]int, len(n.Content)/2)
	if isNull(n) {
		return out, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, field, "want a mapping with keys %s", strings.Join(known, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := join(field, k.Value)
		if !slices.Contains(known, k.Value) {
			return nil, p.errf(k, name, "unknown field: want one of %s", strings.Join(known, ", "))
		}
		if prev, dup := keyLine[k.Value]; dup {
			return nil, p.errf(k, name, "already set at line %d", prev)
		}
		out[k.Value] = v
		keyLine[k.Value] = k.Line
	}
	return out, nil
}

// stringList reads a list of scalars (or a null, as an empty list),
// checking each.
func (p *parser) stringList(n *yaml.Node, field string, check func(n *yaml.Node, field, v string) error) ([]string, error) {
	n = deref(n)
	if isNull(n) || (n.Kind == yaml.SequenceNode && len(n.Content) == 0) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, field, "want a list")
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		s, err := p.scalar(item, f)
		if err != nil {
			return nil, err
		}
		s = strings.TrimSpace(s)
		if err := check(deref(item), f, s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// scalar returns a scalar's text; a null reads as "".
func (p *parser) scalar(n *yaml.Node, field string) (string, error) {
	n = deref(n)
	if isNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", p.errf(n, field, "want a single value")
	}
	return n.Value, nil
}

// deref follows an alias to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}
