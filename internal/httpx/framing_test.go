package httpx

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// framingServer serves, through Serve on a loopback listener (plain HTTP),
// a handler that reads the whole body and answers with its length, and
// records the requests it served.
func framingServer(t *testing.T) (addr string, served func() []string) {
	t.Helper()
	var mu sync.Mutex
	var got []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		io.WriteString(w, "ok")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, NewServer(ServerConfig{Handler: h}), ln, false) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// exchange writes raw to a new connection, half-closes it, and reads the
// statuses of every answer until the server closes.
func exchange(t *testing.T, addr, raw string) []int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute)) // a hang, not a measurement
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	br := bufio.NewReader(c)
	var statuses []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return statuses
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
}

func TestRefuseAmbiguousFraming(t *testing.T) {
	t.Parallel()
	const (
		get      = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
		withCL   = "POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
		chunked  = "POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nTrailer: x\r\n\r\n"
		smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	)
	both := func(clName, teName, teValue string) string {
		body := "0\r\n\r\n" + smuggled
		return "POST /both HTTP/1.1\r\nHost: x\r\n" + clName + ": 5\r\n" + teName + ": " + teValue + "\r\n\r\n" + body
	}
	for _, tt := range []struct {
		name       string
		raw        string
		want       []int
		wantServed []string
	}{
		{"content-length", withCL + get, []int{200, 200}, []string{"POST /cl hello", "GET /a "}},
		{"chunked", chunked + get, []int{200, 200}, []string{"POST /te helloabc", "GET /a "}},
		{"bare LF lines", "POST /cl HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello" + get, []int{200, 200}, []string{"POST /cl hello", "GET /a "}},
		{"a body that looks like a head", "POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 39\r\n\r\nContent-Length: 1\r\nTransfer-Encoding: x" + get,
			[]int{200, 200}, []string{"POST /cl Content-Length: 1\r\nTransfer-Encoding: x", "GET /a "}},

		{"both", both("Content-Length", "Transfer-Encoding", "chunked"), []int{400}, nil},
		{"both, TE first", "POST /both HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, []int{400}, nil},
		{"both, other case", both("content-length", "TRANSFER-ENCODING", "Chunked"), []int{400}, nil},
		{"both, other coding", both("Content-Length", "Transfer-Encoding", "identity"), []int{400}, nil},
		{"both, HTTP/1.0", "POST /both HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, []int{400}, nil},
		{"both after a content-length request", withCL + both("Content-Length", "Transfer-Encoding", "chunked"), []int{200, 400}, []string{"POST /cl hello"}},
		{"both after a chunked request", chunked + both("Content-Length", "Transfer-Encoding", "chunked"), []int{200, 400}, []string{"POST /te helloabc"}},
		{"both after a get", get + both("Content-Length", "Transfer-Encoding", "chunked"), []int{200, 400}, []string{"GET /a "}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, served := framingServer(t)
			got := exchange(t, addr, tt.raw)
			if !equal(got, tt.want) {
				t.Errorf("statuses = %v, want %v", got, tt.want)
			}
			if s := served(); !equal(s, tt.wantServed) {
				t.Errorf("served %q, want %q", s, tt.wantServed)
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Bytes arriving one at a time are framed as well as whole requests.
func TestRefuseAmbiguousFramingByteByByte(t *testing.T) {
	t.Parallel()
	addr, served := framingServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	raw := "POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n" +
		"POST /both HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	for i := range len(raw) {
		if _, err := c.Write([]byte{raw[i]}); err != nil {
			break // the server may close once it has refused
		}
	}
	br := bufio.NewReader(c)
	var statuses []int
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if !equal(statuses, []int{200, 400}) || strings.Join(served(), "|") != "POST /te hi" {
		t.Errorf("statuses %v, served %q; want 200 then 400, only /te served", statuses, served())
	}
}
