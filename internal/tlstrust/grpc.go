package tlstrust

import (
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"

	"google.golang.org/grpc/credentials"
)

// Creds are gRPC TLS transport credentials that remember why the last
// handshake failed. grpc-go reports a failed handshake to the caller only
// as an "unavailable" status whose text flattens the cause; LastError
// keeps the typed error, so a certificate problem can be told apart from
// a server that is down (see Explain).
type Creds struct {
	credentials.TransportCredentials
	last *atomic.Pointer[error] // shared with clones
}

// NewCreds wraps credentials.NewTLS(cfg).
func NewCreds(cfg *tls.Config) *Creds {
	return &Creds{TransportCredentials: credentials.NewTLS(cfg), last: new(atomic.Pointer[error])}
}

// ClientHandshake runs the TLS handshake and records its outcome.
func (c *Creds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		c.last.Store(&err)
	} else {
		c.last.Store(nil)
	}
	return conn, info, err
}

// Clone returns credentials that record into the same LastError.
func (c *Creds) Clone() credentials.TransportCredentials {
	return &Creds{TransportCredentials: c.TransportCredentials.Clone(), last: c.last}
}

// LastError is the error of the last handshake, or nil when it succeeded
// or none has completed yet.
func (c *Creds) LastError() error {
	if p := c.last.Load(); p != nil {
		return *p
	}
	return nil
}
