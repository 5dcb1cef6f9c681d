package server

import (
	"net"
	"strconv"
	"strings"

	"petrel/stun"
)

// startSecondSTUN starts a STUN listener on the port after the primary one
// (or a random port when the primary's was random). Agents get both URLs:
// an endpoint-independent NAT maps one socket to the same public port for
// both, a symmetric NAT to two different ones, which is how the agent tells
// (and reports) why a peer is relayed. Best effort: nil if it cannot bind.
func (s *Server) startSecondSTUN(primary net.Addr) *stun.Server {
	ua, ok := primary.(*net.UDPAddr)
	if !ok {
		return nil
	}
	port := 0
	if ua.Port != 0 && ua.Port < 65535 && !strings.HasSuffix(s.cfg.STUNListen, ":0") {
		port = ua.Port + 1
	}
	addr := net.JoinHostPort(ua.IP.String(), strconv.Itoa(port))
	if ua.IP.IsUnspecified() {
		addr = ":" + strconv.Itoa(port)
	}
	st := stun.NewServer(addr, s.cfg.Logger)
	if err := st.Start(); err != nil {
		s.log.Warn("second STUN port unavailable; agents cannot tell symmetric NATs apart", "addr", addr, "err", err)
		return nil
	}
	return st
}

// secondSTUNURL is first's URL with the second listener's port.
func secondSTUNURL(first string, second net.Addr) string {
	host := strings.TrimPrefix(first, "stun:")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return "stun:" + net.JoinHostPort(host, strconv.Itoa(second.(*net.UDPAddr).Port))
}
