package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/vigil-sec/vigil/scanner"
)

// Policy restricts where git may fetch from. A nil *Policy is what
// `vigil scan` uses on a user's own machine: every protocol in
// AllProtocols, no address check. The server sets one from its outbound
// policy.
type Policy struct {
	// Protocols lists the protocols git may use (Protocol constants);
	// empty means AllProtocols. Git enforces it too (GIT_ALLOW_PROTOCOL),
	// for redirects and submodules.
	Protocols []string
	// Resolve, when set, is asked for the host of every network remote
	// before git runs: it resolves the host, checks the address and
	// returns the one to connect to, or an error to refuse the remote.
	// For http and https git is pinned to that address
	// (http.curloptResolve), so a DNS answer that changes between the
	// check and the connection is never used, and redirects are not
	// followed. ssh and git:// connections are made by programs that
	// resolve the host again: for them the check is made, but a rebinding
	// DNS server can still switch the address in between.
	Resolve func(ctx context.Context, host string) (netip.Addr, error)
}

// ErrRefused is wrapped by the errors of remotes that a Policy refuses.
var ErrRefused = errors.New("repository refused by the outbound policy")

func (p *Policy) protocols() []string {
	if p == nil || len(p.Protocols) == 0 {
		return AllProtocols
	}
	return p.Protocols
}

// Check parses repo (see ParseRemote) and checks it against the policy:
// its protocol, and for a network remote the address its host resolves
// to. It returns the remote and the address to pin (the zero Addr when
// none). Errors wrap scanner.ErrUsage, and also ErrRefused for what the
// policy refuses.
func (p *Policy) Check(ctx context.Context, repo string) (Remote, netip.Addr, error) {
	r, err := ParseRemote(repo)
	if err != nil {
		return Remote{}, netip.Addr{}, err
	}
	if !slices.Contains(p.protocols(), r.Protocol) {
		what := r.Protocol
		if r.Protocol == ProtocolFile {
			what = "local (file)"
		}
		return Remote{}, netip.Addr{}, fmt.Errorf("%w: %w: repository %q: %s repositories are not allowed here (allowed: %s)",
			scanner.ErrUsage, ErrRefused, redactRepo(repo), what, strings.Join(p.protocols(), ", "))
	}
	if p == nil || p.Resolve == nil || r.Host == "" {
		return r, netip.Addr{}, nil
	}
	addr, err := p.Resolve(ctx, r.Host)
	if err != nil {
		return Remote{}, netip.Addr{}, fmt.Errorf("%w: %w: repository %q: %v", scanner.ErrUsage, ErrRefused, redactRepo(repo), err)
	}
	return r, addr, nil
}

// Git runs git with args in dir and returns its standard output. repo is
// the remote the command reaches ("" for a purely local command): it is
// checked first, and the command is confined to the policy's protocols
// and pinned to the checked address. The caller still ends git's options
// with "--" or "--end-of-options" before any input. Its error carries
// git's own message.
func (p *Policy) Git(ctx context.Context, dir, repo string, args ...string) (string, error) {
	var pre []string
	if repo != "" {
		r, addr, err := p.Check(ctx, repo)
		if err != nil {
			return "", err
		}
		_, literal := netip.ParseAddr(r.Host)
		if addr.IsValid() && literal != nil && (r.Protocol == ProtocolHTTPS || r.Protocol == ProtocolHTTP) {
			port := r.Port
			if port == "" {
				port = r.DefaultPort()
			}
			ip := addr.Unmap().String()
			if addr.Unmap().Is6() {
				ip = "[" + ip + "]"
			}
			pre = append(pre,
				"-c", "http.curloptResolve="+net.JoinHostPort(r.Host, port)+":"+ip,
				"-c", "http.followRedirects=false")
		}
	}
	cmd := exec.CommandContext(ctx, "git", append(pre, args...)...) // #nosec G204 -- fixed program; inputs are checked and follow "--"
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		// Never prompt for credentials: a pipeline has nobody to answer.
		"GIT_TERMINAL_PROMPT=0",
		// Only these transports, whatever the configuration says: never a
		// remote helper (ext:: runs commands).
		"GIT_ALLOW_PROTOCOL="+strings.Join(p.protocols(), ":"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", ctxErr
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return "", err
		}
		return "", errors.New(gitMessage(msg))
	}
	return stdout.String(), nil
}
