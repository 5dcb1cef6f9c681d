// Package stun is Petrel's STUN binding server (RFC 5389 Binding only): it
// answers Binding requests on UDP with XOR-MAPPED-ADDRESS (plus SOFTWARE and
// FINGERPRINT) so agents learn their server-reflexive address, and silently
// ignores everything else.
//
// Who may import it: cmd/petrel-server and tests.
//
// Threading: one goroutine reads the socket and answers inline. Start does not
// block; Stop is idempotent and waits for that goroutine.
package stun

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	pstun "github.com/pion/stun/v4"
)

// DefaultAddr is the default listen address.
const DefaultAddr = ":3478"

// Software is the SOFTWARE attribute sent in responses.
const Software = "petrel"

// Server is a STUN binding server. Create it with NewServer.
type Server struct {
	addr string
	log  *slog.Logger

	mu      sync.Mutex
	started bool
	conn    net.PacketConn
	done    chan struct{}
}

// NewServer returns a server that will listen on addr ("" = DefaultAddr).
func NewServer(addr string, log *slog.Logger) *Server {
	if addr == "" {
		addr = DefaultAddr
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{addr: addr, log: log.With("component", "stun"), done: make(chan struct{})}
}

// Start binds the UDP socket and starts answering. It does not block.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("start stun: already started")
	}
	c, err := net.ListenPacket("udp", s.addr)
	if err != nil {
		return fmt.Errorf("listen stun: %w", err)
	}
	s.started, s.conn = true, c
	go s.serve(c)
	s.log.Info("stun listening", "addr", c.LocalAddr().String())
	return nil
}

// Addr returns the bound address (nil before Start).
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.conn.LocalAddr()
}

// Stop closes the socket and waits for the server goroutine. Idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	c := s.conn
	started := s.started
	s.conn = nil
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if started {
		<-s.done
	}
}

func (s *Server) serve(c net.PacketConn) {
	defer close(s.done)
	buf := make([]byte, 1500)
	var resp pstun.Message
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Debug("stun read failed", "err", err)
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		if out := Respond(&resp, buf[:n], ua); out != nil {
			if _, err := c.WriteTo(out, from); err != nil {
				s.log.Debug("stun write failed", "to", from.String(), "err", err)
			}
		}
	}
}

// Respond builds the answer to packet b from addr into resp and returns its
// bytes (aliasing resp), or nil when b is not a well-formed Binding request.
func Respond(resp *pstun.Message, b []byte, from *net.UDPAddr) []byte {
	if !pstun.IsMessage(b) {
		return nil
	}
	req := pstun.Message{Raw: b}
	if err := req.Decode(); err != nil || req.Type != pstun.BindingRequest {
		return nil
	}
	resp.Reset()
	err := resp.Build(
		pstun.NewTransactionIDSetter(req.TransactionID),
		pstun.BindingSuccess,
		&pstun.XORMappedAddress{IP: from.IP, Port: from.Port},
		pstun.NewSoftware(Software),
		pstun.Fingerprint,
	)
	if err != nil {
		return nil
	}
	return resp.Raw
}
