package restapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"petrel/internal/ratelimit"
	"petrel/management"
	"petrel/management/model"
)

// New returns the admin REST API handler. Mount it so that it sees the full
// path (it serves /api/...): mux.Handle("/api/", restapi.New(svc, log)).
func New(api management.AdminAPI, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &server{api: api, log: log.With("component", "restapi"), mux: http.NewServeMux(), now: time.Now,
		authFails: newAuthLimiter()}
	for _, rt := range routes {
		s.mux.Handle(rt.pattern(), s.endpoint(rt))
	}
	for _, p := range shadowed(routes) {
		s.mux.HandleFunc(p, s.fallback)
	}
	s.mux.HandleFunc("/api/", s.fallback)
	return s
}

type server struct {
	api management.AdminAPI
	log *slog.Logger
	mux *http.ServeMux
	now func() time.Time
	// authFails counts failed admin-token checks per source (authlimit.go).
	authFails *ratelimit.Limiter[netip.Addr]
}

// call is one authenticated request.
type call struct {
	w http.ResponseWriter
	// r carries the caller's principal in its context (WithPrincipal).
	r       *http.Request
	p       management.Principal
	account string
	snap    *model.Account
}

// handleFunc serves one route; it returns the status and the value to
// encode as JSON (nil with 204), or an error.
type handleFunc func(s *server, c *call) (int, any, error)

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// authenticate identifies the caller (management.Service.Authenticate: an
// admin token, a personal access token or an OpenID access token), or
// writes the error: 401 for a missing or rejected token, 403 for a blocked
// user, 503 when the identity provider cannot be reached. Only rejected
// tokens count towards the per-source failure limit.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request) (management.Principal, bool) {
	src := source(r)
	if s.tooManyFailures(w, r, src) {
		return management.Principal{}, false
	}
	h := r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if h == "" || !found || !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="petrel"`)
		s.writeError(w, r, &apiError{status: http.StatusUnauthorized, code: codeUnauthenticated,
			msg: "missing admin token: send the header Authorization: Bearer TOKEN (an admin token, a personal access token or an OpenID access token)"})
		return management.Principal{}, false
	}
	p, err := s.api.Authenticate(r.Context(), token)
	if err == nil {
		return p, true
	}
	var me *management.Error
	if errors.As(err, &me) && me.Kind == management.KindUnauthenticated {
		s.authFailed(r, src, "token rejected")
		msg := me.Error()
		if me.Msg == "token rejected" || me.Msg == "no token" {
			msg = "admin token rejected"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="petrel", error="invalid_token"`)
		s.writeError(w, r, &apiError{status: http.StatusUnauthorized, code: codeUnauthenticated, msg: msg})
		return management.Principal{}, false
	}
	// KindPermission (a blocked user) is a 403, KindUnavailable (the
	// identity provider is down) a 503: toAPIError maps both.
	s.writeError(w, r, err)
	return management.Principal{}, false
}

// authorize checks the route's scope against the caller's role: admin
// routes need an owner or admin; self routes are open to every role (their
// handlers keep users to their own objects).
func authorize(rt route, p management.Principal) error {
	if rt.scope == scopeSelf || p.IsAdmin() {
		return nil
	}
	return needAdmin(p)
}

// needAdmin is the 403 for a user calling what only admins may.
func needAdmin(p management.Principal) error {
	who := p.Email
	if who == "" {
		who = p.UserID
	}
	return &apiError{status: http.StatusForbidden, code: codePermission,
		msg: fmt.Sprintf("this needs the admin role; you are signed in as %s (%s)", who, p.Role)}
}

func (s *server) endpoint(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		c := &call{w: w, r: r}
		status := 0
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
				s.writeError(w, r, &apiError{status: 500, code: codeInternal, msg: "internal error"})
				status = 500
			}
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status, "took", s.now().Sub(start))
		}()
		if !rt.public {
			p, ok := s.authenticate(w, r)
			if !ok {
				status = http.StatusUnauthorized
				return
			}
			if err := authorize(rt, p); err != nil {
				status = s.writeError(w, r, err)
				return
			}
			// Every service call gets the principal through the request's
			// context: mutations are audited with it as the actor.
			c.p, c.account = p, p.AccountID
			c.r = r.WithContext(management.WithPrincipal(r.Context(), p))
		}
		st, body, err := rt.handle(s, c)
		if err != nil {
			status = s.writeError(w, r, err)
			return
		}
		status = st
		s.writeJSON(w, st, body)
	})
}

// fallback answers paths under /api that no route serves: 405 with Allow
// when another method would match, else 404. It authenticates first so an
// anonymous caller learns nothing about the route table.
func (s *server) fallback(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r); !ok {
		return
	}
	if allow := allowed(routes, r.URL.Path); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed, code: codeMethod,
			msg: r.Method + " is not allowed here; allowed: " + strings.Join(allow, ", ")})
		return
	}
	s.writeError(w, r, notFoundf("no such endpoint: %s %s (see GET /api/openapi.yaml)", r.Method, r.URL.Path))
}

// allowed returns the methods served for path. As in OpenAPI (and the
// ServeMux), a fixed segment wins over a {wildcard}: only the routes with
// the most specific path that matches count, so /api/policies/check
// allows GET alone although /api/policies/{id} also matches it.
func allowed(table []route, path string) []string {
	var best string
	var allow []string
	for _, rt := range table {
		if !pathMatches(rt.path, path) {
			continue
		}
		switch {
		case best == "" || moreSpecific(rt.path, best):
			best, allow = rt.path, []string{rt.method}
		case rt.path == best && !slices.Contains(allow, rt.method):
			allow = append(allow, rt.method)
		}
	}
	return allow
}

// moreSpecific reports whether route path a has a fixed segment where b,
// of the same length, has its first differing {wildcard}.
func moreSpecific(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := range min(len(as), len(bs)) {
		aw, bw := strings.HasPrefix(as[i], "{"), strings.HasPrefix(bs[i], "{")
		if aw != bw {
			return bw
		}
	}
	return false
}

// shadowed returns the patterns that make a fixed path answer 405 for a
// method only a {wildcard} sibling serves (PUT /api/policies/check would
// otherwise reach PUT /api/policies/{id} with the id "check").
func shadowed(table []route) []string {
	var out []string
	for _, fixed := range table {
		if strings.Contains(fixed.path, "{") {
			continue
		}
		for _, wild := range table {
			p := wild.method + " " + fixed.path
			if wild.path == fixed.path || !pathMatches(wild.path, fixed.path) || slices.Contains(out, p) ||
				slices.ContainsFunc(table, func(rt route) bool { return rt.pattern() == p }) {
				continue
			}
			out = append(out, p)
		}
	}
	return out
}

// pathMatches reports whether path matches a route path with {wildcards}.
func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

func (s *server) writeJSON(w http.ResponseWriter, status int, v any) {
	if status == http.StatusNoContent || v == nil {
		w.WriteHeader(status)
		return
	}
	if raw, ok := v.(rawBody); ok {
		w.Header().Set("Content-Type", raw.contentType)
		w.WriteHeader(status)
		_, _ = w.Write(raw.data)
		return
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		s.log.Error("encode response", "err", err)
		s.writeError(w, nil, &apiError{status: 500, code: codeInternal, msg: "internal error"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers err as JSON and returns the status used.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	e, internal := toAPIError(err)
	if internal && r != nil {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	b, _ := json.Marshal(errorBody{Error: e.msg, Code: e.code})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(append(b, '\n'))
	return e.status
}

// snapshot returns (once per call) a copy of the caller's account.
func (s *server) snapshot(c *call) (*model.Account, error) {
	if c.snap == nil {
		a, err := s.api.Snapshot(c.account)
		if err != nil {
			return nil, err
		}
		c.snap = a
	}
	return c.snap, nil
}

func (s *server) resolver(c *call) (resolver, error) {
	a, err := s.snapshot(c)
	return resolver{a: a}, err
}
