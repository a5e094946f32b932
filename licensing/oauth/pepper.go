package oauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/vigil-sec/vigil/internal/seal"
)

// An installation made before the pepper came from the seal key kept a
// random pepper in oauth_keys, in the clear, and its clients' secret
// hashes (legacyHashPrefix) are keyed by it. The hashes cannot be made
// again without the secrets, so New migrates in three steps, each safe to
// interrupt:
//
//  1. the stored pepper is replaced by itself sealed (AES-256-GCM) under a
//     key derived from Config.Pepper, so that a copy of the database alone
//     no longer verifies a guessed secret;
//  2. a client whose secret verifies with the legacy pepper gets a hash
//     keyed by Config.Pepper in its place (rehash);
//  3. once no client that is not revoked has a legacy hash, the sealed
//     legacy pepper is deleted; revoked clients' legacy hashes then never
//     verify again, which changes nothing for them.

// infoLegacyPepper is the HKDF label of the key sealing the legacy pepper.
const infoLegacyPepper = "vigil/oauth/seal/legacy-pepper"

// sealedPepperPrefix marks a sealed legacy pepper.
const sealedPepperPrefix = "sealed1:"

func (s *Server) pepperWrap() *seal.Sealer { return s.sealer(infoLegacyPepper) }

// sealer seals under the key derived from the pepper for info.
func (s *Server) sealer(info string) *seal.Sealer {
	sl, err := seal.Derive(s.pepper, info)
	if err != nil {
		panic("oauth: " + err.Error())
	}
	return sl
}

// loadLegacyPepper returns the legacy pepper, sealing it first if the
// database holds it in the clear, or nil when there is none (or no more).
func (s *Server) loadLegacyPepper(ctx context.Context) ([]byte, error) {
	wrap := s.pepperWrap()
	for range 3 { // a racing process may seal it first: read again
		k, err := s.db.ActiveOAuthKey(ctx, KeyPepper)
		if errors.Is(err, ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("oauth: load pepper: %w", err)
		}
		aad := []byte("oauth-pepper\x00" + k.ID)
		var pepper []byte
		if sealed, ok := strings.CutPrefix(k.Material, sealedPepperPrefix); ok {
			if pepper, err = wrap.Open(sealed, aad); errors.Is(err, seal.ErrMalformed) {
				return nil, fmt.Errorf("oauth: stored pepper %s is malformed", k.ID)
			} else if err != nil {
				return nil, fmt.Errorf("oauth: the stored legacy pepper %s does not open with this pepper: another installation's seal key?", k.ID)
			}
		} else {
			if pepper, err = base64.RawURLEncoding.DecodeString(k.Material); err != nil || len(pepper) < minPepperLen {
				return nil, fmt.Errorf("oauth: stored pepper %s is malformed", k.ID)
			}
			sealed := sealedPepperPrefix + wrap.Seal(pepper, aad)
			ok, err := s.db.ReplaceOAuthKeyMaterial(ctx, k.ID, k.Material, sealed)
			if err != nil {
				return nil, fmt.Errorf("oauth: seal the stored pepper: %w", err)
			}
			if !ok {
				continue
			}
			s.log.InfoContext(ctx, "oauth: the pepper stored in the database is now sealed under the seal key")
		}
		n, err := s.db.CountOAuthSecretHashes(ctx, legacyHashPrefix)
		if err != nil {
			return nil, fmt.Errorf("oauth: load pepper: %w", err)
		}
		if n > 0 {
			return pepper, nil
		}
		if err := s.db.DeleteOAuthKey(ctx, k.ID); err != nil {
			return nil, fmt.Errorf("oauth: retire the legacy pepper: %w", err)
		}
		s.log.InfoContext(ctx, "oauth: every active client's secret hash uses the seal key's pepper: legacy pepper deleted")
		return nil, nil
	}
	return nil, errors.New("oauth: load pepper: it keeps changing under this process")
}

// rehash replaces the client's legacy hash by one keyed by the pepper,
// now that its secret verified. A failure leaves the legacy hash, which
// still verifies: it is only logged.
func (s *Server) rehash(ctx context.Context, c StoredClient, secret string) {
	if _, err := s.db.ReplaceOAuthSecretHash(ctx, c.ID, c.SecretHash, s.hashSecret(c.ID, secret)); err != nil {
		s.log.WarnContext(ctx, "oauth: rehash a legacy client secret", slog.String("client_id", c.ID), slog.Any("error", err))
	}
}
