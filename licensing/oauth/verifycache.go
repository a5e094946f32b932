package oauth

import "time"

// DefaultRevocationRecheck is the default of Config.RevocationRecheck.
const DefaultRevocationRecheck = 2 * time.Second

// verifiedEntry is what Server.verified (a tokencache.Cache) remembers of
// a token that verified: a token seen again skips the ES256 signature check (most of a
// verification's CPU) and, for Config.RevocationRecheck after its last
// check, the two store reads that look for its revocation and its
// client's. Expiry is checked on every call. A revocation through this
// server empties the cache at once; one made by another process (`vigil
// clients revoke`, another host) takes effect within RevocationRecheck.
type verifiedEntry struct {
	claims    Claims
	checkedAt time.Time // of the revocation checks
}
