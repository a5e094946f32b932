package server

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vigil-sec/vigil/internal/httpx"
	"github.com/vigil-sec/vigil/licensing/webhooks"
	"github.com/vigil-sec/vigil/scanner"
	"github.com/vigil-sec/vigil/scanner/source"
)

// The outbound policy (Config.Outbound) and the clients made from it:
// every connection the server makes goes through one of them.
//
//   - HTTP (forges, licensing webhooks): s.outbound.Client, which checks
//     the scheme and dials only allowed addresses;
//   - registries: s.registryTransport, the policy's dialer (ggcr picks
//     http for the insecure registries);
//   - git, an external process the Go dialer cannot see: s.git confines
//     it to the allowed protocols (GIT_ALLOW_PROTOCOL) and, for http(s),
//     pins it to an address the policy checked (http.curloptResolve);
//     local paths and file:// need "file" among the schemes.

// initOutbound builds the policy's clients. It runs in New.
func (s *Server) initOutbound() {
	s.outbound = s.cfg.Outbound
	if s.outbound == nil {
		s.outbound = &httpx.OutboundPolicy{}
	}
	s.registryTransport = s.cfg.RegistryTransport
	if s.registryTransport == nil {
		s.registryTransport = s.outbound.Transport()
	}
	var protocols []string
	for _, p := range source.AllProtocols {
		if s.outbound.AllowsScheme(p) {
			protocols = append(protocols, p)
		}
	}
	s.git = &source.Policy{Protocols: protocols, Resolve: s.outbound.ResolveOne}
	if len(protocols) == 0 {
		// No protocol at all: refuse every remote rather than fall back
		// to the Policy's default of all of them.
		s.git.Protocols = []string{"none"}
	}
}

// gitPolicy confines the server's git commands (clones, fetches,
// ls-remote) to its outbound policy.
func (s *Server) gitPolicy() *source.Policy { return s.git }

// webhookClient makes the client of licensing webhook deliveries: the
// policy's, with a timeout and no redirects followed.
func (s *Server) webhookClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = webhooks.DefaultTimeout
	}
	hc := s.outbound.Client(timeout)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc
}

// checkRepoURL checks a project's repository against the policy without
// resolving its host: the protocol is allowed and an address host is.
// The name is resolved and checked again at each clone.
func (s *Server) checkRepoURL(repo string) error {
	r, _, err := (&source.Policy{Protocols: s.git.Protocols}).Check(context.Background(), repo)
	if err != nil {
		return invalidField("repo_url: %s", scanner.UsageMessage(err))
	}
	if r.Host != "" {
		if err := s.outbound.CheckHost(r.Host); err != nil {
			return invalidField("repo_url: %v", err)
		}
	}
	return nil
}

// checkProjectOutbound checks the repository and the forge of a project
// to create against the policy.
func (s *Server) checkProjectOutbound(req *createProjectRequest) error {
	if err := s.checkRepoURL(req.RepoURL); err != nil {
		return err
	}
	if req.Forge != nil {
		return s.checkOutboundURL("forge.url", req.Forge.URL)
	}
	return nil
}

// checkOutboundURL checks a URL the server will send requests to (a
// forge, a webhook receiver) against the policy; field names it in the
// error.
func (s *Server) checkOutboundURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return invalidField("%s: not a URL", field)
	}
	if err := s.outbound.CheckURL(u); err != nil {
		return invalidField("%s: %v", field, err)
	}
	return nil
}

// checkRegistry checks the registry host of an image reference.
func (s *Server) checkRegistry(ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil // the caller reports a bad reference
	}
	host := r.Context().RegistryStr()
	if h, _, err := splitHostPortOpt(host); err == nil {
		host = h
	}
	if err := s.outbound.CheckHost(host); err != nil {
		return invalidField("image: registry %v", err)
	}
	return nil
}

// splitHostPortOpt splits host[:port], the port optional; IPv6 hosts are
// in brackets.
func splitHostPortOpt(hostport string) (string, string, error) {
	if strings.HasPrefix(hostport, "[") {
		end := strings.Index(hostport, "]")
		if end < 0 {
			return "", "", errors.New("missing ]")
		}
		return hostport[1:end], strings.TrimPrefix(hostport[end+1:], ":"), nil
	}
	if i := strings.LastIndex(hostport, ":"); i >= 0 && strings.Count(hostport, ":") == 1 {
		return hostport[:i], hostport[i+1:], nil
	}
	if _, err := netip.ParseAddr(hostport); err == nil || !strings.Contains(hostport, ":") {
		return hostport, "", nil
	}
	return "", "", errors.New("bad host")
}
