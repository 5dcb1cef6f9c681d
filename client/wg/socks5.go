package wg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// SOCKS5 (RFC 1928) constants used here.
const (
	socksVersion      = 5
	socksNoAuth       = 0x00
	socksNoAcceptable = 0xff
	socksCmdConnect   = 0x01
	socksAtypIPv4     = 0x01
	socksAtypDomain   = 0x03
	socksAtypIPv6     = 0x04

	socksRepSucceeded       = 0x00
	socksRepGeneralFailure  = 0x01
	socksRepHostUnreachable = 0x04
	socksRepCmdUnsupported  = 0x07
	socksRepAtypUnsupported = 0x08
)

// errSOCKS marks malformed or unsupported requests; rep is the reply code to send.
type socksError struct {
	rep byte
	msg string
}

func (e *socksError) Error() string { return "socks: " + e.msg }

// socksRequest is a parsed CONNECT request.
type socksRequest struct {
	addr netip.Addr // valid for IPv4/IPv6 requests
	host string     // non-empty for domain requests
	port uint16
}

// readSOCKSGreeting reads the method negotiation message and reports whether
// "no authentication" was offered.
func readSOCKSGreeting(r io.Reader) (bool, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return false, fmt.Errorf("read greeting: %w", err)
	}
	if h[0] != socksVersion {
		return false, &socksError{socksRepGeneralFailure, "bad version"}
	}
	if h[1] == 0 {
		return false, &socksError{socksRepGeneralFailure, "no methods"}
	}
	methods := make([]byte, h[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return false, fmt.Errorf("read methods: %w", err)
	}
	for _, m := range methods {
		if m == socksNoAuth {
			return true, nil
		}
	}
	return false, nil
}

// readSOCKSRequest reads one request. Errors of type *socksError carry the
// reply code the client should get.
func readSOCKSRequest(r io.Reader) (socksRequest, error) {
	var req socksRequest
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return req, fmt.Errorf("read request: %w", err)
	}
	if h[0] != socksVersion {
		return req, &socksError{socksRepGeneralFailure, "bad version"}
	}
	if h[2] != 0 {
		return req, &socksError{socksRepGeneralFailure, "reserved byte not zero"}
	}
	switch h[3] {
	case socksAtypIPv4:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return req, fmt.Errorf("read ipv4: %w", err)
		}
		req.addr = netip.AddrFrom4(b)
	case socksAtypIPv6:
		var b [16]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return req, fmt.Errorf("read ipv6: %w", err)
		}
		req.addr = netip.AddrFrom16(b)
	case socksAtypDomain:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return req, fmt.Errorf("read domain length: %w", err)
		}
		if l[0] == 0 {
			return req, &socksError{socksRepGeneralFailure, "empty domain"}
		}
		b := make([]byte, l[0])
		if _, err := io.ReadFull(r, b); err != nil {
			return req, fmt.Errorf("read domain: %w", err)
		}
		req.host = string(b)
	default:
		return req, &socksError{socksRepAtypUnsupported, "unsupported address type"}
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return req, fmt.Errorf("read port: %w", err)
	}
	req.port = binary.BigEndian.Uint16(p[:])
	if h[1] != socksCmdConnect {
		return req, &socksError{socksRepCmdUnsupported, "only CONNECT is supported"}
	}
	return req, nil
}

// socksReply builds a reply with the given bound address (zero = 0.0.0.0:0).
func socksReply(rep byte, bound netip.AddrPort) []byte {
	a := bound.Addr().Unmap()
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	b := []byte{socksVersion, rep, 0}
	if a.Is4() {
		b = append(b, socksAtypIPv4)
	} else {
		b = append(b, socksAtypIPv6)
	}
	b = append(b, a.AsSlice()...)
	return binary.BigEndian.AppendUint16(b, bound.Port())
}

// Resolver maps a SOCKS domain name to an address. The default refuses
// every name that is not an IP literal.
type Resolver func(ctx context.Context, host string) (netip.Addr, error)

// ErrNoResolver is returned by the default Resolver.
var ErrNoResolver = errors.New("name resolution disabled")

// SOCKSOptions tune ServeSOCKS5.
type SOCKSOptions struct {
	Resolve Resolver // nil: only IP literals
	// Outside reports whether a destination is reached outside the overlay
	// (no overlay route or exit node covers it); such connections are
	// dialled from the host. nil: everything goes through the overlay.
	Outside func(netip.Addr) bool
}

// ServeSOCKS5 serves a minimal SOCKS5 proxy (CONNECT, no authentication) on
// addr, which must be a loopback address, dialling through the netstack. It
// returns the bound address; the server stops when ctx ends or the device
// closes. Netstack mode only.
func (d *Device) ServeSOCKS5(ctx context.Context, addr string, opts ...SOCKSOptions) (net.Addr, error) {
	if d.tnet == nil {
		return nil, errors.New("serve socks5: netstack mode only")
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("serve socks5: %q is not a loopback ip:port", addr)
	}
	var o SOCKSOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("serve socks5: %w", err)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		ln.Close()
		return nil, fmt.Errorf("serve socks5: %w", ErrClosed)
	}
	sctx, cancel := context.WithCancel(ctx)
	d.socksStop = append(d.socksStop, cancel)
	d.socksWG.Add(2)
	d.mu.Unlock()
	go func() {
		defer d.socksWG.Done()
		<-sctx.Done()
		ln.Close()
	}()
	go func() {
		defer d.socksWG.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				cancel()
				return
			}
			d.socksWG.Add(1)
			go func() {
				defer d.socksWG.Done()
				d.serveSOCKSConn(sctx, c, o)
			}()
		}
	}()
	return ln.Addr(), nil
}

func (d *Device) serveSOCKSConn(ctx context.Context, c net.Conn, o SOCKSOptions) {
	resolve := o.Resolve
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	ok, err := readSOCKSGreeting(c)
	if err != nil {
		return
	}
	if !ok {
		_, _ = c.Write([]byte{socksVersion, socksNoAcceptable})
		return
	}
	if _, err := c.Write([]byte{socksVersion, socksNoAuth}); err != nil {
		return
	}
	req, err := readSOCKSRequest(c)
	if err != nil {
		var se *socksError
		if errors.As(err, &se) {
			_, _ = c.Write(socksReply(se.rep, netip.AddrPort{}))
		}
		return
	}
	dst := req.addr
	if req.host != "" {
		if a, perr := netip.ParseAddr(req.host); perr == nil {
			dst = a
		} else if resolve == nil {
			_, _ = c.Write(socksReply(socksRepHostUnreachable, netip.AddrPort{}))
			return
		} else if dst, err = resolve(ctx, req.host); err != nil {
			_, _ = c.Write(socksReply(socksRepHostUnreachable, netip.AddrPort{}))
			return
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	target := net.JoinHostPort(dst.Unmap().String(), strconv.Itoa(int(req.port)))
	var up net.Conn
	if o.Outside != nil && o.Outside(dst.Unmap()) {
		up, err = (&net.Dialer{}).DialContext(dctx, "tcp", target)
	} else {
		up, err = d.tnet.DialContext(dctx, "tcp", target)
	}
	cancel()
	if err != nil {
		_, _ = c.Write(socksReply(socksRepHostUnreachable, netip.AddrPort{}))
		return
	}
	defer up.Close()
	stopUp := context.AfterFunc(ctx, func() { up.Close() })
	defer stopUp()
	var bound netip.AddrPort
	if ta, ok := up.LocalAddr().(*net.TCPAddr); ok {
		bound = ta.AddrPort()
	}
	if _, err := c.Write(socksReply(socksRepSucceeded, bound)); err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		close(done)
	}()
	_, _ = io.Copy(c, up)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	<-done
}
