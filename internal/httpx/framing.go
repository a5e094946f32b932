package httpx

import (
	"bytes"
	"errors"
	"net"
	"strconv"
)

// ErrAmbiguousFraming is the read error of a connection, once it has sent
// a request with both Content-Length and Transfer-Encoding.
var ErrAmbiguousFraming = errors.New("request has both Content-Length and Transfer-Encoding")

// maxFramingLine bounds a line the framing reader keeps while looking for
// its end; a longer one is beyond net/http's header limit, which refuses
// the request itself.
const maxFramingLine = DefaultMaxHeaderBytes + 4096

// RefuseAmbiguousFraming wraps a plain-HTTP listener so that a request
// with both Content-Length and Transfer-Encoding is refused (400, and the
// connection closed) before it is served. net/http follows RFC 9112 and
// lets Transfer-Encoding win, but a proxy in front that lets
// Content-Length win would see a different request boundary: the
// leftover bytes would be served as a request the proxy never checked
// (request smuggling, RFC 9112 §11.2).
//
// It follows HTTP/1.1 framing on each connection as net/http reads it
// (request heads, Content-Length bodies, chunked bodies and trailers);
// where it cannot follow (a malformed length, which net/http refuses
// itself), it stops looking at that connection. Serve applies it to every
// plain-HTTP listener. A TLS listener is not wrapped: net/http terminates
// TLS itself there, so no HTTP intermediary can disagree with it about
// where a request ends.
func RefuseAmbiguousFraming(ln net.Listener) net.Listener { return framingListener{ln} }

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

// Framing states.
const (
	inHead = iota
	inBody
	inChunkSize
	inChunkData
	inChunkEnd
	inTrailer
	lost // framing no longer followed
)

type framingConn struct {
	net.Conn
	err     error
	pending []byte // of refusedHeadEnd, still to be read
	state   int
	left    int64  // inBody, inChunkData: bytes still to come
	line    []byte // the line being read (heads, chunk sizes, trailers)
	// the head being read
	sawRequestLine, http10, contentLength, transferEncoding, chunked bool
	length                                                           int64
	badLength                                                        bool
}

// refusedHeadEnd replaces the end of an ambiguous head: a header line
// without a colon, which net/http answers with 400 Bad Request before it
// closes the connection.
const refusedHeadEnd = "ambiguous-framing-content-length-and-transfer-encoding\r\n\r\n"

func (c *framingConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.state != lost {
		if keep, ferr := c.scan(p[:n]); ferr != nil {
			// The requests before the ambiguous one are served; the
			// blank line that ends its head, and all that follows, is
			// replaced by a line net/http refuses.
			c.err = ferr
			m := copy(p[keep:], refusedHeadEnd)
			c.pending = []byte(refusedHeadEnd[m:])
			return keep + m, nil
		}
	}
	return n, err
}

// scan follows the framing through b. On an ambiguous head it returns
// where in b the blank line that ends the head begins (0 when it began in
// an earlier read) and ErrAmbiguousFraming.
func (c *framingConn) scan(b []byte) (int, error) {
	pos := 0
	for pos < len(b) && c.state != lost {
		switch c.state {
		case inBody, inChunkData:
			k := min(int64(len(b)-pos), c.left)
			pos, c.left = pos+int(k), c.left-k
			if c.left == 0 {
				if c.state == inBody {
					c.state = inHead
				} else {
					c.state = inChunkEnd
				}
			}
		default:
			lineStart := pos
			if len(c.line) > 0 {
				lineStart = 0
			}
			i := bytes.IndexByte(b[pos:], '\n')
			if i < 0 {
				c.line = append(c.line, b[pos:]...)
				if len(c.line) > maxFramingLine {
					c.state = lost
				}
				return len(b), nil
			}
			c.line = append(c.line, b[pos:pos+i]...)
			pos += i + 1
			err := c.endLine(bytes.TrimSuffix(c.line, []byte("\r")))
			c.line = c.line[:0]
			if err != nil {
				return lineStart, err
			}
		}
	}
	return len(b), nil
}

// endLine moves the framing on by one line.
func (c *framingConn) endLine(line []byte) error {
	switch c.state {
	case inHead:
		if len(line) == 0 {
			if !c.sawRequestLine {
				return nil // empty lines before a request line
			}
			return c.endHead()
		}
		if !c.sawRequestLine {
			// net/http ignores Transfer-Encoding in HTTP/1.0 requests.
			c.sawRequestLine, c.http10 = true, bytes.HasSuffix(line, []byte(" HTTP/1.0"))
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil // a continuation of the previous field's value
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil
		}
		value = bytes.Trim(value, " \t")
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (c.contentLength && n != c.length) {
				c.badLength = true
			}
			c.contentLength, c.length = true, n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			c.transferEncoding = true
			c.chunked = bytes.EqualFold(value, []byte("chunked"))
		}
	case inChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseUint(string(bytes.TrimRight(size, " \t")), 16, 63)
		if err != nil {
			c.state = lost // net/http fails the body and closes
			return nil
		}
		if n == 0 {
			c.state = inTrailer
		} else {
			c.state, c.left = inChunkData, int64(n)
		}
	case inChunkEnd:
		if len(line) != 0 {
			c.state = lost
			return nil
		}
		c.state = inChunkSize
	case inTrailer:
		if len(line) == 0 {
			c.state = inHead
		}
	}
	return nil
}

// endHead decides how the body of the head just read is framed.
func (c *framingConn) endHead() error {
	cl, te, chunked, length, bad := c.contentLength, c.transferEncoding, c.chunked, c.length, c.badLength
	te11 := te && !c.http10
	c.sawRequestLine, c.http10, c.contentLength, c.transferEncoding, c.chunked, c.length, c.badLength = false, false, false, false, false, 0, false
	switch {
	case cl && te:
		return ErrAmbiguousFraming
	case te11 && chunked:
		c.state = inChunkSize
	case te11, bad:
		c.state = lost // net/http refuses it and closes the connection
	case cl && length > 0:
		c.state, c.left = inBody, length
	default:
		c.state = inHead
	}
	return nil
}
