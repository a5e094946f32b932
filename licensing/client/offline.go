package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/vigil-sec/vigil/licensing/offline"
)

// Offline activation, for machines that never reach the server: the
// application seals a request to the tenant's server key (a file the
// vendor hands out: `vigil license server-key`), the request travels by
// file to a machine that reaches the server (or to the vendor's portal),
// and the signed license that comes back is opened and verified here.
//
//	req, key, err := c.OfflineRequest(serverKey, offline.Params{ActivationCode: code, SeatID: "host-1"}, nil)
//	// save key (offline.WriteClientKey), carry req.Marshal() to the server…
//	answer, err := c.SubmitOffline(ctx, req) // on a connected machine
//	lic, err := c.OpenOffline(answer, key, serverKey, state)
//
// Refresh and deactivation are requests of Type offline.Refresh and
// offline.Deactivate made with the same client key. OpenOffline checks
// the signature, that the answer is to this key's request, the lease,
// and, with a State, that the clock was not turned back.

// OfflineRequest seals a request of the client's product to the tenant's
// server key. A nil key makes a new one of p.KEM (X25519 by default):
// keep it, it opens the answer and proves the activation later. The
// server key must be the client's tenant's.
func (c *Client) OfflineRequest(sk *offline.ServerKey, p offline.Params, key *offline.ClientKey) (*offline.Envelope, *offline.ClientKey, error) {
	if sk == nil {
		return nil, nil, errors.New("client: offline request: no server key")
	}
	if sk.TenantID != c.cfg.TenantID {
		return nil, nil, fmt.Errorf("client: offline request: the server key is tenant %q's, this client is tenant %q's", sk.TenantID, c.cfg.TenantID)
	}
	if p.ProductID == "" {
		p.ProductID = c.cfg.ProductID
	}
	if p.Fingerprint == "" {
		p.Fingerprint = c.cfg.Fingerprint
	}
	env, ck, err := offline.NewRequest(sk, p, key)
	if err != nil {
		return nil, nil, fmt.Errorf("client: offline request: %w", err)
	}
	return env, ck, nil
}

// SubmitOffline posts a sealed request to POST /api/v1/offline/activate
// and returns the sealed answer. Transient failures are retried like the
// online calls; a request the server already answered is refused
// (CodeOfflineReplayed: each request is served once), so after a lost
// answer make a new request.
func (c *Client) SubmitOffline(ctx context.Context, req *offline.Envelope) (*offline.Envelope, error) {
	if req == nil {
		return nil, errors.New("client: offline submit: no request")
	}
	ans, err := c.do(ctx, http.MethodPost, "/api/v1/offline/activate", req.Marshal(), func(http.Header) {})
	if err != nil {
		return nil, err
	}
	if err := ans.apiError(); err != nil {
		return nil, err
	}
	env, err := offline.ParseEnvelope(ans.body, offline.PurposeAnswer)
	if err != nil {
		return nil, fmt.Errorf("client: offline answer: %w", err)
	}
	return env, nil
}

// OpenOffline opens and verifies an answer with the client key that made
// the request and the tenant's server key; st (nil to skip) remembers the
// greatest time seen and catches a clock turned back
// (offline.ErrClockRollback). Save st afterwards.
func (c *Client) OpenOffline(answer *offline.Envelope, key *offline.ClientKey, sk *offline.ServerKey, st *offline.State) (*offline.License, error) {
	lic, err := offline.Open(answer, key, sk, st)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return lic, nil
}
