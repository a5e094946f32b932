package source

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/vigil-sec/vigil/scanner"
)

// maxRevLen bounds a revision: a ref name longer than this is no ref a
// pipeline passes.
const maxRevLen = 1024

// CheckRev checks a revision before it goes anywhere near git: a commit
// SHA (4 to 64 hex digits), HEAD, or a branch or tag name as git
// check-ref-format allows it (refs/heads/main, release/1.2, v1.0.0). "" is
// allowed and means HEAD. Anything that could read as an option (a leading
// '-') or as revision syntax (~, ^, :, @{, ..) is refused: a pipeline
// passes names it did not choose. The error wraps scanner.ErrUsage and
// names the input.
func CheckRev(rev string) error {
	if rev == "" || rev == "HEAD" {
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: revision %q is not a commit SHA, a branch or a tag name: %s", scanner.ErrUsage, rev, why)
	}
	switch {
	case len(rev) > maxRevLen:
		return fmt.Errorf("%w: revision of %d bytes: at most %d", scanner.ErrUsage, len(rev), maxRevLen)
	case strings.HasPrefix(rev, "-"):
		return bad("it must not start with '-'")
	case strings.ContainsFunc(rev, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return bad("it must not contain spaces or control characters")
	case strings.ContainsAny(rev, "~^:?*[\\"):
		return bad(`it must not contain any of ~ ^ : ? * [ \`)
	case strings.Contains(rev, "..") || strings.Contains(rev, "@{") || strings.Contains(rev, "//") || rev == "@":
		return bad(`it must not contain "..", "@{" or "//", nor be "@"`)
	case strings.HasSuffix(rev, "/") || strings.HasSuffix(rev, "."):
		return bad("it must not end with '/' or '.'")
	}
	for c := range strings.SplitSeq(rev, "/") {
		if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return bad(`no part of it may start with '.' or end with ".lock"`)
		}
	}
	return nil
}

// Protocols git may use, as GIT_ALLOW_PROTOCOL names them. "file" covers
// local paths as well as file:// URLs.
const (
	ProtocolFile  = "file"
	ProtocolHTTPS = "https"
	ProtocolHTTP  = "http"
	ProtocolSSH   = "ssh"
	ProtocolGit   = "git"
)

// AllProtocols are the protocols a nil Policy allows: every transport git
// has except remote helpers (ext::, fd::, anything::), which run commands.
var AllProtocols = []string{ProtocolFile, ProtocolHTTPS, ProtocolHTTP, ProtocolSSH, ProtocolGit}

// Remote is a repository address as the checks see it.
type Remote struct {
	// Protocol is one of the Protocol constants.
	Protocol string
	// Host and Port are those of a network remote (Port "" for the
	// protocol's default); both are empty for ProtocolFile.
	Host, Port string
}

// DefaultPort is the port git connects to when the address names none.
func (r Remote) DefaultPort() string {
	switch r.Protocol {
	case ProtocolHTTPS:
		return "443"
	case ProtocolHTTP:
		return "80"
	case ProtocolSSH:
		return "22"
	case ProtocolGit:
		return "9418"
	}
	return ""
}

// ParseRemote checks a repository address and says how git would reach
// it: a URL (https, http, ssh, git+ssh, git, file), an scp-like address
// (git@host:org/repo.git) or a local path. It refuses what git would read
// as an option (a leading '-', in the address or its host), remote helper
// addresses (ext::COMMAND, fd::N, any name::address, which run programs),
// unknown schemes and control characters. The error wraps scanner.ErrUsage
// and names the input, without a password it may carry.
func ParseRemote(repo string) (Remote, error) {
	shown := redactRepo(repo)
	bad := func(format string, args ...any) (Remote, error) {
		return Remote{}, fmt.Errorf("%w: repository %q: %s", scanner.ErrUsage, shown, fmt.Sprintf(format, args...))
	}
	switch {
	case repo == "":
		return bad("empty")
	case strings.HasPrefix(repo, "-"):
		return bad("must not start with '-'")
	case strings.ContainsFunc(repo, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return bad("must not contain control characters")
	}
	if helper, ok := remoteHelper(repo); ok {
		return bad("the %q transport runs programs and is never allowed", helper+"::")
	}
	if strings.Contains(repo, "://") {
		u, err := url.Parse(repo)
		if err != nil {
			return bad("not a URL")
		}
		var r Remote
		switch strings.ToLower(u.Scheme) {
		case "https":
			r.Protocol = ProtocolHTTPS
		case "http":
			r.Protocol = ProtocolHTTP
		case "ssh", "git+ssh", "ssh+git":
			r.Protocol = ProtocolSSH
		case "git":
			r.Protocol = ProtocolGit
		case "file":
			if u.Host != "" && u.Host != "localhost" {
				return bad("a file:// URL names no host")
			}
			return Remote{Protocol: ProtocolFile}, nil
		default:
			return bad("scheme %q: want https, http, ssh, git or file", u.Scheme)
		}
		r.Host, r.Port = u.Hostname(), u.Port()
		if r.Host == "" {
			return bad("no host")
		}
		if strings.HasPrefix(r.Host, "-") {
			return bad("its host must not start with '-'")
		}
		if strings.ContainsFunc(u.Host, func(c rune) bool { return c <= ' ' }) {
			return bad("its host must not contain spaces")
		}
		return r, nil
	}
	if !IsRepoURL(repo) {
		return Remote{Protocol: ProtocolFile}, nil // a local path
	}
	if host, ok := scpHost(repo); ok {
		if host == "" || strings.HasPrefix(host, "-") {
			return bad("its host must not be empty or start with '-'")
		}
		return Remote{Protocol: ProtocolSSH, Host: host}, nil
	}
	return Remote{Protocol: ProtocolFile}, nil
}

// remoteHelper reports whether git would hand repo to a remote helper
// (transport.c: a run of URL scheme characters followed by "::").
func remoteHelper(repo string) (string, bool) {
	i := strings.Index(repo, "::")
	if i <= 0 {
		return "", false
	}
	for j, c := range repo[:i] {
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (j == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-')) {
			return "", false
		}
	}
	return repo[:i], true
}

// scpHost returns the host of an scp-like address ([user@]host:path, a
// colon before any slash), as git reads one.
func scpHost(repo string) (string, bool) {
	rest := repo
	if at := strings.Index(rest, "@"); at >= 0 && !strings.ContainsAny(rest[:at], "/:") {
		rest = rest[at+1:]
	}
	if strings.HasPrefix(rest, "[") { // [::1]:path or [host:port]:path
		end := strings.Index(rest, "]")
		if end < 0 || end+1 >= len(rest) || rest[end+1] != ':' {
			return "", false
		}
		return rest[1:end], true
	}
	colon := strings.Index(rest, ":")
	if colon < 0 || strings.Contains(rest[:colon], "/") {
		return "", false
	}
	return rest[:colon], true
}

// redactRepo drops the password of a URL that has one.
func redactRepo(s string) string {
	if strings.Contains(s, "://") {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
				return u.String()
			}
		}
	}
	return s
}
