package split

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// alpnACME is the TLS-ALPN-01 challenge protocol (RFC 8737). A connection
// that negotiates it is an ACME server checking the challenge certificate:
// the handshake was the whole exchange, so it is closed right after.
const alpnACME = "acme-tls/1"

// plainToTLS answers an HTTP/1 client that sent plaintext to the TLS port,
// as net/http's own TLS server does, so `curl http://` says what is wrong.
const plainToTLS = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" +
	"Client sent an HTTP request to an HTTPS server.\n"

// terminateTLS runs the server side of the TLS handshake on c, bounded by
// the sniff deadline already set on it. It returns the TLS connection, or
// nil when c is done with: the handshake failed, or it answered a
// TLS-ALPN-01 challenge. c is not closed here.
func (s *Listener) terminateTLS(c net.Conn) *tls.Conn {
	tc := tls.Server(c, s.opts.TLS)
	if err := tc.Handshake(); err != nil {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP1(rh.RecordHeader[:]) {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, plainToTLS)
		}
		s.opts.Logger.Debug("TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		return nil
	}
	if tc.ConnectionState().NegotiatedProtocol == alpnACME {
		return nil
	}
	return tc
}

// looksLikeHTTP1 reports whether the first bytes are an HTTP/1 method in
// capitals (not the HTTP/2 preface: a plaintext gRPC client gets no text).
func looksLikeHTTP1(head []byte) bool {
	for _, m := range []string{"GET ", "HEAD ", "POST ", "PUT ", "DELETE", "OPTIONS", "PATCH "} {
		n := min(len(head), len(m))
		if n > 0 && string(head[:n]) == m[:n] {
			return true
		}
	}
	return false
}
