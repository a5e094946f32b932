package offline

import (
	"crypto/hpke"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Limits on request fields, as the online Licensing API's.
const (
	maxIDLen          = 256
	maxFingerprintLen = 512
)

// Request is what a client seals to the server.
type Request struct {
	Version        int       `json:"version"`
	Type           string    `json:"type"` // Activate, Refresh or Deactivate
	TenantID       string    `json:"tenant_id"`
	ProductID      string    `json:"product_id"`
	ActivationCode string    `json:"activation_code,omitempty"` // Activate
	ActivationID   string    `json:"activation_id,omitempty"`   // Refresh, Deactivate
	SeatID         string    `json:"seat_id"`
	SeatName       string    `json:"seat_name,omitempty"`
	Fingerprint    string    `json:"fingerprint,omitempty"`
	Time           time.Time `json:"time"`
	RequestID      string    `json:"request_id"`
	// ClientKey is the client's HPKE public key, of the envelope's KEM:
	// the answer is sealed to it.
	ClientKey []byte `json:"client_key"`
	// Proof is derived from the client's private key; the server keeps
	// its hash at activation and wants it again to refresh or deactivate.
	Proof string `json:"proof"`
}

// Params are what a client asks for.
type Params struct {
	Type           string // Activate (default), Refresh or Deactivate
	ProductID      string
	ActivationCode string // Activate
	ActivationID   string // Refresh, Deactivate; default: the client key's
	SeatID         string
	SeatName       string
	Fingerprint    string
	// KEM of a new client key: KEMX25519 (default) or KEMMLKEM768X25519.
	// A request made with an existing key uses the key's KEM.
	KEM string
	// Now is the request's time; zero means time.Now.
	Now time.Time
}

// ClientKey is the client's side of offline activation: its HPKE private
// key, the last request made with it (which Open checks the answer
// against) and the activation it holds. Keep it in a file only its owner
// reads (WriteClientKey).
type ClientKey struct {
	Version    int    `json:"version"`
	KEM        string `json:"kem"`
	PrivateKey []byte `json:"private_key"`
	// Pending is the last request sealed with this key.
	Pending Pending `json:"pending"`
	// ActivationID is the activation of the last license Open accepted.
	ActivationID string `json:"activation_id,omitempty"`
}

// Pending identifies a request whose answer is awaited.
type Pending struct {
	Type        string    `json:"type"`
	RequestID   string    `json:"request_id"`
	TenantID    string    `json:"tenant_id"`
	ProductID   string    `json:"product_id"`
	SeatID      string    `json:"seat_id"`
	Fingerprint string    `json:"fingerprint,omitempty"`
	Time        time.Time `json:"time"`
}

// NewClientKey makes a client key of the KEM ("" is KEMX25519).
func NewClientKey(kemName string) (*ClientKey, error) {
	kem, err := KEM(kemName)
	if err != nil {
		return nil, err
	}
	if kemName == "" {
		kemName = KEMX25519
	}
	priv, err := kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("offline: generate %s key: %w", kemName, err)
	}
	b, err := priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("offline: %s key: %w", kemName, err)
	}
	return &ClientKey{Version: Version, KEM: kemName, PrivateKey: b}, nil
}

func (ck *ClientKey) private() (hpke.PrivateKey, error) {
	kem, err := KEM(ck.KEM)
	if err != nil {
		return nil, err
	}
	priv, err := kem.NewPrivateKey(ck.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: client key: %s private key: %v", ErrMalformed, ck.KEM, err)
	}
	return priv, nil
}

// keyID is the ID answers are sealed under: the hash of the public key.
func keyIDOf(pub hpke.PublicKey) string { return KeyHash(pub.Bytes())[:22] }

// ParseClientKey decodes and checks a ClientKey's JSON.
func ParseClientKey(b []byte) (*ClientKey, error) {
	var ck ClientKey
	if err := decodeStrict(b, MaxEnvelope, &ck, "client key"); err != nil {
		return nil, err
	}
	if ck.Version != Version {
		return nil, fmt.Errorf("%w: client key version %d: want %d", ErrMalformed, ck.Version, Version)
	}
	if _, err := ck.private(); err != nil {
		return nil, err
	}
	return &ck, nil
}

// NewRequest seals a request of p to the server key sk. With ck nil it
// makes a new client key of p.KEM; otherwise it uses ck (a refresh or a
// deactivation must use the key that activated). It returns the envelope
// and the client key, whose Pending now names this request: save it, Open
// needs it.
func NewRequest(sk *ServerKey, p Params, ck *ClientKey) (*Envelope, *ClientKey, error) {
	if p.Type == "" {
		p.Type = Activate
	}
	if ck == nil {
		var err error
		if ck, err = NewClientKey(p.KEM); err != nil {
			return nil, nil, err
		}
	} else {
		c := *ck
		ck = &c
	}
	if p.ActivationID == "" && p.Type != Activate {
		p.ActivationID = ck.ActivationID
	}
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	req := Request{
		Version: Version, Type: p.Type, TenantID: sk.TenantID, ProductID: p.ProductID,
		ActivationCode: p.ActivationCode, ActivationID: p.ActivationID,
		SeatID: p.SeatID, SeatName: p.SeatName, Fingerprint: p.Fingerprint,
		Time: p.Now.UTC().Truncate(time.Second), RequestID: newRequestID(), Proof: proof(ck.PrivateKey),
	}
	if req.Type == Activate {
		req.ActivationID = ""
	} else {
		req.ActivationCode = ""
	}
	priv, err := ck.private()
	if err != nil {
		return nil, nil, err
	}
	req.ClientKey = priv.PublicKey().Bytes()
	if err := req.Check(); err != nil {
		return nil, nil, err
	}
	pk, err := sk.kemKey(ck.KEM)
	if err != nil {
		return nil, nil, err
	}
	plain, err := json.Marshal(req) // #nosec G117 -- the code and proof are sealed to the server key just below
	if err != nil {
		return nil, nil, fmt.Errorf("offline: encode request: %w", err)
	}
	env, err := seal(pk, PurposeRequest, sk.kemKeyID(ck.KEM), plain)
	if err != nil {
		return nil, nil, err
	}
	ck.Pending = Pending{Type: req.Type, RequestID: req.RequestID, TenantID: req.TenantID, ProductID: req.ProductID,
		SeatID: req.SeatID, Fingerprint: req.Fingerprint, Time: req.Time}
	return env, ck, nil
}

// Check reports what is wrong with the request's fields, naming them.
func (r *Request) Check() error {
	var problems []string
	switch r.Type {
	case Activate:
		if r.ActivationCode == "" {
			problems = append(problems, "activation_code is required to activate")
		}
	case Refresh, Deactivate:
		if r.ActivationID == "" || len(r.ActivationID) > maxIDLen {
			problems = append(problems, "activation_id is required to "+r.Type+" (from the license of the activation)")
		}
	default:
		problems = append(problems, fmt.Sprintf("type %q: want %s, %s or %s", r.Type, Activate, Refresh, Deactivate))
	}
	if r.TenantID == "" || len(r.TenantID) > maxIDLen {
		problems = append(problems, "tenant_id is required (at most 256 bytes)")
	}
	if r.ProductID == "" || len(r.ProductID) > maxIDLen {
		problems = append(problems, "product_id is required (at most 256 bytes)")
	}
	if r.SeatID == "" || len(r.SeatID) > maxIDLen || len(r.SeatName) > maxIDLen {
		problems = append(problems, "seat_id is required; seat_id and seat_name are at most 256 bytes")
	}
	if len(r.Fingerprint) > maxFingerprintLen || len(r.ActivationCode) > 64 {
		problems = append(problems, "fingerprint is at most 512 bytes, activation_code 64")
	}
	if r.RequestID == "" || len(r.RequestID) > 64 || r.Proof == "" || len(r.Proof) > 64 || r.Time.IsZero() {
		problems = append(problems, "request_id, proof and time are required")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: offline request: %s", ErrMalformed, strings.Join(problems, "; "))
	}
	return nil
}

// OpenRequest opens an envelope sealed to the server key priv, whose ID
// is keyID, and checks the request's fields and that its client key is of
// the envelope's KEM. It does not check the time: see CheckTime.
func OpenRequest(env *Envelope, priv hpke.PrivateKey, keyID string) (*Request, error) {
	plain, err := open(env, priv, PurposeRequest, keyID)
	if err != nil {
		return nil, err
	}
	var req Request
	if err := decodeStrict(plain, maxPlaintext, &req, "offline request"); err != nil {
		return nil, err
	}
	if req.Version != Version {
		return nil, fmt.Errorf("%w: offline request version %d: want %d", ErrMalformed, req.Version, Version)
	}
	if err := req.Check(); err != nil {
		return nil, err
	}
	if _, err := priv.KEM().NewPublicKey(req.ClientKey); err != nil {
		return nil, fmt.Errorf("%w: offline request: client_key is not a valid key of the envelope's KEM", ErrMalformed)
	}
	return &req, nil
}

// CheckTime refuses a request made more than RequestMaxAge before now or
// more than RequestMaxSkew after it (ErrStale).
func (r *Request) CheckTime(now time.Time) error {
	switch {
	case r.Time.Before(now.Add(-RequestMaxAge)):
		return fmt.Errorf("%w: it was made at %s, more than %v ago; make a new request", ErrStale, r.Time.UTC().Format(time.RFC3339), RequestMaxAge)
	case r.Time.After(now.Add(RequestMaxSkew)):
		return fmt.Errorf("%w: it was made at %s, ahead of the server's clock (%s) by more than %v; check the client's clock", ErrStale,
			r.Time.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), RequestMaxSkew)
	}
	return nil
}
