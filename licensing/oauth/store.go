package oauth

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound: the client or key does not exist. A Store's not-found
// errors satisfy errors.Is(err, ErrNotFound).
var ErrNotFound = errors.New("not found")

// StoredClient is a client as the Store keeps it: a Client with the
// hash of its secret (never the secret itself).
type StoredClient struct {
	ID   string
	Name string
	// SecretHash is what the Server derives from the secret.
	SecretHash string
	Scopes     []string
	// TenantID binds the client to a licensing tenant: its tokens act
	// for that tenant only (the "vigil_tenant" claim). "" for none.
	TenantID  string
	CreatedAt time.Time
	RevokedAt time.Time // zero while the client is active
}

// Revoked reports whether the client has been revoked.
func (c StoredClient) Revoked() bool { return !c.RevokedAt.IsZero() }

// RevokedToken is an access token revoked before its expiry.
type RevokedToken struct {
	JTI       string
	ClientID  string
	ExpiresAt time.Time
}

// Key is server key material of a kind (KeySigning, KeyPepper). At most
// one key of each kind is active (not retired).
type Key struct {
	ID        string // the JWS "kid" of a signing key
	Kind      string
	Material  string
	CreatedAt time.Time
	RetiredAt time.Time
}

// Kinds of Key.
const (
	KeySigning = "signing"
	KeyPepper  = "pepper"
)

// Store is what the Server needs from its database; internal/store
// implements it. Reads of a missing client or key return an error that
// wraps ErrNotFound.
type Store interface {
	// CreateOAuthClient stores a new client, with its creation time set;
	// a client bound to a tenant that does not exist is ErrNotFound.
	CreateOAuthClient(ctx context.Context, c StoredClient) (StoredClient, error)
	// CreateFirstOAuthClient stores c only if the store has never had a
	// client, and reports whether it did; of racing callers one wins.
	CreateFirstOAuthClient(ctx context.Context, c StoredClient) (StoredClient, bool, error)
	GetOAuthClient(ctx context.Context, id string) (StoredClient, error)
	// ListOAuthClients returns every client, revoked ones included,
	// oldest first.
	ListOAuthClients(ctx context.Context) ([]StoredClient, error)
	// RevokeOAuthClient marks the client revoked (ErrNotFound if none).
	RevokeOAuthClient(ctx context.Context, id string) error
	// ReplaceOAuthSecretHash sets the client's secret hash to hash if it
	// is still old, and reports whether it did.
	ReplaceOAuthSecretHash(ctx context.Context, clientID, old, hash string) (bool, error)
	// CountOAuthSecretHashes counts the clients, not revoked, whose secret
	// hash starts with prefix.
	CountOAuthSecretHashes(ctx context.Context, prefix string) (int, error)

	RevokeOAuthToken(ctx context.Context, t RevokedToken) error
	OAuthTokenRevoked(ctx context.Context, jti string) (bool, error)
	// PruneOAuthRevokedTokens deletes the revocations of tokens that
	// expired before the time and returns how many it deleted.
	PruneOAuthRevokedTokens(ctx context.Context, before time.Time) (int64, error)

	// EnsureOAuthKey returns the active key of k.Kind, storing k as that
	// key first if there is none; racing callers all get the winner's.
	EnsureOAuthKey(ctx context.Context, k Key) (Key, error)
	// ListOAuthKeys returns the keys of the kind, retired ones included,
	// newest first.
	ListOAuthKeys(ctx context.Context, kind string) ([]Key, error)
	// ActiveOAuthKey returns the active key of the kind (ErrNotFound if
	// none).
	ActiveOAuthKey(ctx context.Context, kind string) (Key, error)
	// ReplaceOAuthKeyMaterial sets the key's material if it is still old,
	// and reports whether it did.
	ReplaceOAuthKeyMaterial(ctx context.Context, id, old, material string) (bool, error)
	DeleteOAuthKey(ctx context.Context, id string) error
}
