package httpx

import (
	"net/http"
	"strings"
)

// HSTSMaxAge is the max-age of Strict-Transport-Security: two years, as
// the HSTS preload list asks.
const HSTSMaxAge = "63072000"

// SecurityHeaders sets the headers every response carries, errors and
// 404s included, before next runs (a handler may still replace one):
//
//   - X-Content-Type-Options: nosniff, so a browser never runs a JSON or
//     report download as a script or a page;
//   - Content-Security-Policy: frame-ancestors 'none' and
//     X-Frame-Options: DENY, so no page can frame an answer;
//   - Referrer-Policy: no-referrer, so link tokens never leave in a
//     Referer header;
//   - Strict-Transport-Security when the request came over TLS (behind a
//     TLS proxy, the proxy sets it);
//   - Cache-Control: no-store (and Pragma: no-cache) on the answer to any
//     request that carries credentials (an Authorization header) and on
//     every answer under noStorePrefixes (the OAuth endpoints, whose
//     clients may send their secret in the body, RFC 6749 §5.1), so no
//     cache keeps what only its caller may see.
func SecurityHeaders(noStorePrefixes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Content-Security-Policy", "frame-ancestors 'none'")
			h.Set("Referrer-Policy", "no-referrer")
			if r.TLS != nil {
				h.Set("Strict-Transport-Security", "max-age="+HSTSMaxAge+"; includeSubDomains")
			}
			if credentialed(r, noStorePrefixes) {
				h.Set("Cache-Control", "no-store")
				h.Set("Pragma", "no-cache")
			}
			next.ServeHTTP(w, r)
		})
	}
}

func credentialed(r *http.Request, noStorePrefixes []string) bool {
	if _, ok := r.Header["Authorization"]; ok {
		return true
	}
	for _, p := range noStorePrefixes {
		if strings.HasPrefix(r.URL.Path, p) {
			return true
		}
	}
	return false
}
