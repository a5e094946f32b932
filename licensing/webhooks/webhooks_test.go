package webhooks_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-sec/vigil/licensing/webhooks"
)

// The example of the spec's reference libraries
// (standard-webhooks/libraries/go/webhook_test.go, TestWebhookSign).
const (
	vectorSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID   = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS      = 1614265330
	vectorPayload = `{"test": 2432232314}`
	vectorSig     = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

// vectorSecretRaw is the vector's secret, which is 24 bytes.
func vectorSecretRaw(t *testing.T) webhooks.Secret {
	t.Helper()
	s, err := webhooks.ParseSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSpecVector(t *testing.T) {
	t.Parallel()
	secret := vectorSecretRaw(t)
	if got := secret.String(); got != vectorSecret {
		t.Errorf("String() = %q, want %q", got, vectorSecret)
	}
	got, err := webhooks.Sign(vectorMsgID, time.Unix(vectorTS, 0), []byte(vectorPayload), webhooks.Keys{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSig {
		t.Errorf("Sign() = %q, want the spec's %q", got, vectorSig)
	}
	h := http.Header{}
	h.Set("webhook-id", vectorMsgID)
	h.Set("webhook-timestamp", strconv.Itoa(vectorTS))
	h.Set("webhook-signature", vectorSig)
	at := time.Unix(vectorTS, 0).Add(4 * time.Minute)
	if err := webhooks.Verify(h, []byte(vectorPayload), webhooks.Keys{Secret: secret}, at); err != nil {
		t.Errorf("Verify(spec vector) = %v", err)
	}
	if err := webhooks.Verify(h, []byte(`{"test": 2432232315}`), webhooks.Keys{Secret: secret}, at); !errors.Is(err, webhooks.ErrSignature) {
		t.Errorf("Verify(altered payload) = %v, want ErrSignature", err)
	}
}

func TestEd25519RoundTripWithPublicKeyOnly(t *testing.T) {
	t.Parallel()
	pub, priv := webhooks.NewKey()
	// The receiver gets only the serialised public key.
	received, err := webhooks.ParsePublicKey(webhooks.FormatPublicKey(pub))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	payload := []byte(`{"type":"license.activated","timestamp":"2026-11-29T13:00:00Z","data":{"tenant_id":"t1"}}`)
	h, err := webhooks.Headers("msg_1", now, payload, webhooks.Keys{Private: priv})
	if err != nil {
		t.Fatal(err)
	}
	if sig := h.Get("webhook-signature"); !strings.HasPrefix(sig, "v1a,") || strings.Contains(sig, " ") {
		t.Errorf("signature = %q, want one v1a signature", sig)
	}
	if err := webhooks.Verify(h, payload, webhooks.Keys{Public: received}, now); err != nil {
		t.Errorf("Verify() = %v", err)
	}
	other, _ := webhooks.NewKey()
	if err := webhooks.Verify(h, payload, webhooks.Keys{Public: other}, now); !errors.Is(err, webhooks.ErrSignature) {
		t.Errorf("Verify(another key) = %v, want ErrSignature", err)
	}
	// The private key's serialisation is its seed, as the spec's libraries read it.
	back, err := webhooks.ParsePrivateKey(webhooks.FormatPrivateKey(priv))
	if err != nil || !back.Equal(priv) {
		t.Errorf("ParsePrivateKey(FormatPrivateKey()) = %v, %v", back, err)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	pub, priv := webhooks.NewKey()
	secret := webhooks.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	payload := []byte(`{"a":1}`)
	both := webhooks.Keys{Private: priv, Secret: secret}
	sign := func(ts time.Time) http.Header {
		h, err := webhooks.Headers("msg_x", ts, payload, both)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	_, priv2 := webhooks.NewKey()
	rotated := sign(now)
	s2, _ := webhooks.Sign("msg_x", now, payload, webhooks.Keys{Private: priv2})
	rotated.Set("webhook-signature", "v2,AAAA "+s2+" "+rotated.Get("webhook-signature"))

	tests := []struct {
		name    string
		h       http.Header
		payload string
		keys    webhooks.Keys
		want    error
	}{
		{"v1a and v1, public key", sign(now), `{"a":1}`, webhooks.Keys{Public: pub}, nil},
		{"v1a and v1, secret", sign(now), `{"a":1}`, webhooks.Keys{Secret: secret}, nil},
		{"several signatures, one good", rotated, `{"a":1}`, webhooks.Keys{Public: pub}, nil},
		{"4m59s old", sign(now.Add(-299 * time.Second)), `{"a":1}`, webhooks.Keys{Public: pub}, nil},
		{"6 minutes old", sign(now.Add(-6 * time.Minute)), `{"a":1}`, webhooks.Keys{Public: pub}, webhooks.ErrTimestamp},
		{"6 minutes ahead", sign(now.Add(6 * time.Minute)), `{"a":1}`, webhooks.Keys{Public: pub}, webhooks.ErrTimestamp},
		{"payload changed", sign(now), `{"a":2}`, webhooks.Keys{Public: pub, Secret: secret}, webhooks.ErrSignature},
		{"wrong secret", sign(now), `{"a":1}`, webhooks.Keys{Secret: webhooks.NewSecret()}, webhooks.ErrSignature},
		{"no headers", http.Header{}, `{"a":1}`, webhooks.Keys{Public: pub}, webhooks.ErrMissingHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := webhooks.Verify(tt.h, []byte(tt.payload), tt.keys, now); !errors.Is(got, tt.want) {
				t.Errorf("Verify() = %v, want %v", got, tt.want)
			}
		})
	}

	// An ID or timestamp changed after signing breaks the signature.
	h := sign(now)
	h.Set("webhook-id", "msg_y")
	if err := webhooks.Verify(h, payload, webhooks.Keys{Public: pub}, now); !errors.Is(err, webhooks.ErrSignature) {
		t.Errorf("Verify(other id) = %v, want ErrSignature", err)
	}
	h = sign(now)
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix()+1, 10))
	if err := webhooks.Verify(h, payload, webhooks.Keys{Public: pub}, now); !errors.Is(err, webhooks.ErrSignature) {
		t.Errorf("Verify(other timestamp) = %v, want ErrSignature", err)
	}
	if _, err := webhooks.Sign("msg.1", now, payload, both); err == nil {
		t.Error("Sign(id with a '.') succeeded")
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"whsec_", "whsec_!!", "whsec_" + strings.Repeat("A", 200)} {
		if _, err := webhooks.ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) succeeded", s)
		}
	}
	for _, s := range []string{"", "whpk_AAAA", "whsk_" + webhooks.FormatPublicKey(make(ed25519.PublicKey, 32))[5:]} {
		if _, err := webhooks.ParsePublicKey(s); err == nil {
			t.Errorf("ParsePublicKey(%q) succeeded", s)
		}
	}
	if _, err := webhooks.ParsePrivateKey("whsk_AAAA"); err == nil {
		t.Error("ParsePrivateKey(short) succeeded")
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	pub, priv := webhooks.NewKey()
	status := make(chan int, 1)
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = r.Header.Clone()
		if err := webhooks.Verify(r.Header, body, webhooks.Keys{Public: pub}, time.Now()); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		code := <-status
		if code == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", code)
			return
		}
		w.WriteHeader(code)
		// A receiver that answers without end is read only so far.
		for range 1000 {
			if _, err := w.Write(make([]byte, 1024)); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	client := webhooks.NewHTTPClient(5 * time.Second)
	for _, tt := range []struct {
		status int
		want   webhooks.Outcome
	}{
		{http.StatusNoContent, webhooks.Delivered},
		{http.StatusOK, webhooks.Delivered},
		{http.StatusGone, webhooks.Gone},
		{http.StatusInternalServerError, webhooks.Failed},
		{http.StatusFound, webhooks.Failed},
	} {
		status <- tt.status
		r := webhooks.Send(context.Background(), client, srv.URL+"/hook?token=abc", "msg_1", time.Now(), []byte(`{}`), webhooks.Keys{Private: priv})
		if r.Outcome != tt.want || r.Status != tt.status {
			t.Errorf("Send() answered %d = %+v, want %s", tt.status, r, tt.want)
		}
		if strings.Contains(r.Error, "token") {
			t.Errorf("Send() error %q shows the URL", r.Error)
		}
	}
	if got.Get("Content-Type") != "application/json" || got.Get("webhook-id") != "msg_1" {
		t.Errorf("request headers = %v", got)
	}

	srv.Close()
	r := webhooks.Send(context.Background(), client, srv.URL+"/hook?token=abc", "msg_1", time.Now(), []byte(`{}`), webhooks.Keys{Private: priv})
	if r.Outcome != webhooks.Failed || r.Status != 0 || r.Error == "" || strings.Contains(r.Error, "token") {
		t.Errorf("Send(server down) = %+v, want a failure without the URL", r)
	}
}

// A receiver checks a delivery with the tenant's public key alone.
func ExampleVerify() {
	pub, priv := webhooks.NewKey() // the sender's; the receiver knows FormatPublicKey(pub)
	body := []byte(`{"type":"license.activated","timestamp":"2026-11-29T13:00:00Z","data":{"tenant_id":"t1"}}`)
	h, _ := webhooks.Headers("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Now(), body, webhooks.Keys{Private: priv})

	key, _ := webhooks.ParsePublicKey(webhooks.FormatPublicKey(pub))
	fmt.Println(webhooks.Verify(h, body, webhooks.Keys{Public: key}, time.Now()))
	// Output: <nil>
}

func BenchmarkSign(b *testing.B) {
	_, priv := webhooks.NewKey()
	secret := webhooks.NewSecret()
	payload := []byte(`{"type":"license.activated","timestamp":"2026-11-29T13:00:00Z","data":{"tenant_id":"01a2277f-de00-7435-b9d6-e96b95502323","entitlement_id":"01a2277f-de00-7435-b9d6-e96b95502324"}}`)
	for _, tt := range []struct {
		name string
		keys webhooks.Keys
	}{{"v1a", webhooks.Keys{Private: priv}}, {"v1a+v1", webhooks.Keys{Private: priv, Secret: secret}}} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := webhooks.Sign("msg_1", time.Now(), payload, tt.keys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	pub, priv := webhooks.NewKey()
	payload := []byte(`{"type":"license.activated","timestamp":"2026-11-29T13:00:00Z","data":{"tenant_id":"t1"}}`)
	now := time.Now()
	h, _ := webhooks.Headers("msg_1", now, payload, webhooks.Keys{Private: priv})
	for b.Loop() {
		if err := webhooks.Verify(h, payload, webhooks.Keys{Public: pub}, now); err != nil {
			b.Fatal(err)
		}
	}
}
