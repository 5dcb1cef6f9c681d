package restapi

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"petrel/internal/ratelimit"
)

// Failed admin-token checks per source address: a burst of authFailBurst,
// then one every 1/authFailRate seconds. A source over the limit gets 429
// before its token is even checked, so guessing stops; other sources are
// unaffected. Behind a reverse proxy every caller shares the proxy's
// address (the limit then applies to all of them together).
const (
	authFailRate  = 0.5 // per second
	authFailBurst = 20
	authFailKeys  = 65536
)

const codeRateLimited = "resource_exhausted"

func newAuthLimiter() *ratelimit.Limiter[netip.Addr] {
	return ratelimit.New[netip.Addr](authFailRate, authFailBurst, authFailKeys)
}

// source is the request's remote address (the zero Addr if unparsable).
func source(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// tooManyFailures writes a 429 when src has used up its failed attempts.
func (s *server) tooManyFailures(w http.ResponseWriter, r *http.Request, src netip.Addr) bool {
	ok, wait := s.authFails.Check(src)
	if ok {
		return false
	}
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.writeError(w, r, &apiError{status: http.StatusTooManyRequests, code: codeRateLimited,
		msg: fmt.Sprintf("too many failed authentication attempts from %s; retry in %v", src, time.Duration(secs)*time.Second)})
	return true
}

// authFailed counts a failed attempt and logs it (never the token).
func (s *server) authFailed(r *http.Request, src netip.Addr, why string) {
	s.authFails.Allow(src)
	s.log.Info("admin authentication failed", "source", src, "reason", why, "method", r.Method, "path", r.URL.Path)
}
