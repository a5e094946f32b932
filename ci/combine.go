package ci

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RepoPolicyFile is the policy file a repository commits at its root: the
// file `vigil scan` reads from the target, and the server reads at the
// scanned commit.
const RepoPolicyFile = ".vigil.yaml"

// RepositoryRules are what a server's policy says about the policy file
// committed in the repository (its `repository:` section). Only a
// server's policy sets them: in a repository's own file they mean nothing
// (a repository cannot grant itself anything) and Combine ignores them.
type RepositoryRules struct {
	// Ignore never reads the repository's file: the server's policy alone
	// decides.
	Ignore bool `json:"ignore,omitempty"`
	// AllowExclusions lets the repository's rules.exclude and
	// paths.exclude drop findings; without it they are not applied.
	AllowExclusions bool `json:"allow_exclusions,omitempty"`
	// IgnoreWaivers does not apply the repository's waivers.
	IgnoreWaivers bool `json:"ignore_waivers,omitempty"`
}

// Origin says which policy decided a gate.
type Origin string

// The origins Combine reports.
const (
	// OriginServer: the server's policy alone (no repository file, or the
	// server's policy ignores it).
	OriginServer Origin = "server"
	// OriginRepository: the repository's file as is, because the server's
	// policy is the default one (so `vigil scan` and the server agree).
	OriginRepository Origin = "repository"
	// OriginCombined: the repository's file combined with the server's
	// policy, which it can only tighten.
	OriginCombined Origin = "combined"
)

// Combine returns the policy that gates a commit from the project's policy
// on the server (nil for none) and the policy file committed in the
// repository at that commit (nil for none). Neither is changed.
//
// The rule:
//   - no repository file, or a server policy with repository.ignore: the
//     server's policy (the defaults when there is none);
//   - a server policy that is the default one (none, or one that sets
//     nothing the defaults do not): the repository's file as is, so that
//     the server decides as `vigil scan` does on the same commit;
//   - otherwise the repository can only make the server's policy
//     stricter: the lower (stricter) of the two severity and of the two
//     confidence thresholds; the union of the denied licenses; a part
//     nobody analysed warns only when both say unanalysed: warn; the
//     repository's rule and path exclusions only when the server's policy
//     sets repository.allow_exclusions; the repository's waivers (each
//     has an owner, a reason and an expiry, and an expired one stops
//     applying) unless the server's policy sets repository.ignore_waivers.
//
// Whatever else the server's policy sets is kept as it is.
func Combine(server, repo *Policy) (*Policy, Origin) {
	switch {
	case server != nil && server.Repository.Ignore, repo == nil:
		if server == nil {
			return DefaultPolicy(), OriginServer
		}
		return server.clone(), OriginServer
	case server == nil || server.IsDefault():
		out := repo.clone()
		out.Repository = RepositoryRules{}
		return out, OriginRepository
	}
	out := server.clone()
	out.Source = server.Source + " with " + repo.Source
	out.FailOn.Severity = min(server.FailOn.Severity, repo.FailOn.Severity)
	out.FailOn.Confidence = min(server.FailOn.Confidence, repo.FailOn.Confidence)
	out.Licenses.Deny = union(server.Licenses.Deny, repo.Licenses.Deny)
	// A part nobody analysed only warns when both policies say so (empty
	// means fail).
	if server.Unanalysed != UnanalysedWarn || repo.Unanalysed != UnanalysedWarn {
		out.Unanalysed = ""
		if server.Unanalysed == UnanalysedFail || repo.Unanalysed == UnanalysedFail {
			out.Unanalysed = UnanalysedFail
		}
	}
	if server.Repository.AllowExclusions {
		out.Rules.Exclude = union(server.Rules.Exclude, repo.Rules.Exclude)
		out.Paths.Exclude = union(server.Paths.Exclude, repo.Paths.Exclude)
	}
	for i := range out.Waivers {
		out.Waivers[i].Source = server.Source
	}
	if !server.Repository.IgnoreWaivers {
		for _, w := range repo.Waivers {
			w.Source = repo.Source
			out.Waivers = append(out.Waivers, w)
		}
	}
	return out, OriginCombined
}

// IsDefault reports whether the policy decides exactly as DefaultPolicy
// does: it sets nothing the defaults do not (its Source aside).
func (p *Policy) IsDefault() bool {
	if p == nil {
		return true
	}
	c := p.clone()
	c.Source = ""
	if c.Unanalysed == UnanalysedFail {
		c.Unanalysed = "" // the default
	}
	for _, s := range []*[]string{&c.Rules.Exclude, &c.Paths.Exclude, &c.Licenses.Deny} {
		if len(*s) == 0 {
			*s = nil
		}
	}
	if len(c.Waivers) == 0 {
		c.Waivers = nil
	}
	return reflect.DeepEqual(c, DefaultPolicy())
}

// clone copies the policy and its lists.
func (p *Policy) clone() *Policy {
	c := *p
	c.Rules.Exclude = slices.Clone(p.Rules.Exclude)
	c.Paths.Exclude = slices.Clone(p.Paths.Exclude)
	c.Licenses.Deny = slices.Clone(p.Licenses.Deny)
	c.Waivers = slices.Clone(p.Waivers)
	return &c
}

// union is a followed by the entries of b that a lacks (compared
// case-insensitively).
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, s) }) {
			out = append(out, s)
		}
	}
	return out
}

// repository reads the `repository:` section of a policy.
func (p *parser) repository(n *yaml.Node, r *RepositoryRules) error {
	fields, err := p.mapping(n, "repository", "ignore", "allow_exclusions", "ignore_waivers")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"ignore", &r.Ignore}, {"allow_exclusions", &r.AllowExclusions}, {"ignore_waivers", &r.IgnoreWaivers}} {
		v := fields[f.name]
		if v == nil {
			continue
		}
		field := "repository." + f.name
		s, err := p.scalar(v, field)
		if err != nil {
			return err
		}
		switch s {
		case "true":
			*f.dst = true
		case "false":
			*f.dst = false
		default:
			return p.errf(v, field, "%s: want true or false", fmt.Sprintf("%q", s))
		}
	}
	return nil
}
