package ui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"petrel/internal/ratelimit"
	"petrel/management"
	"petrel/management/model"
)

// Service is what the dashboard needs from the account service;
// *management.Service implements it.
type Service interface {
	management.AdminAPI
	// WatchPeers streams peer connect/disconnect events until ctx ends.
	WatchPeers(ctx context.Context) <-chan management.PeerEvent
	// Recheck confirms a session's credential still authenticates.
	Recheck(p management.Principal, tokenHash []byte) (management.Principal, error)
	// Connectivity combines the agents' path reports for rows × cols.
	Connectivity(accountID string, rows, cols []string) (management.Matrix, error)
	// CatchUp brings the account up to date with other instances' commits
	// (several servers on one database; a no-op otherwise).
	CatchUp(ctx context.Context, accountID string)
	// AddZoneRecord and DeleteZoneRecord change one record of a custom
	// zone as it is when they commit (not a copy read earlier).
	AddZoneRecord(ctx context.Context, accountID, zoneID string, rec model.DNSRecord) (model.DNSRecord, error)
	DeleteZoneRecord(ctx context.Context, accountID, zoneID string, rec model.DNSRecord) (model.DNSRecord, error)
	// CreateAdminToken returns a new admin token's plain text (shown once);
	// DeleteAdminToken deletes one. Both need an owner.
	CreateAdminToken(ctx context.Context, accountID, name string) (string, error)
	DeleteAdminToken(ctx context.Context, accountID, tokenID string) (*model.AdminToken, error)
	// RouteHealth reports, per routed network, which routing peers the
	// agents use now and the last failovers (routehealth.go).
	RouteHealth(accountID string) (map[string]management.RouteUse, error)
	// QueryDNS has a peer's agent resolve name/qtype through its own
	// resolver (the DNS tester, dnstest.go).
	QueryDNS(ctx context.Context, accountID, peerID, name, qtype string) (*management.DNSTestResult, error)
}

// Options configure the dashboard.
type Options struct {
	Logger *slog.Logger
	// TLS: every request reaches the server over TLS. petrel-server's one
	// port terminates TLS before routing, so http.Request.TLS stays nil
	// and the server says so here; it picks the __Host- cookie.
	TLS bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// OIDC offers sign-in with the server's identity provider (oidc.go);
	// nil: tokens only.
	OIDC *OIDC
	// Shared keeps sessions and sign-ins in progress where every server
	// on the same database sees them (--ha); nil: in memory.
	Shared SharedState
}

// CSP is the Content-Security-Policy of every response: scripts, styles
// and fetches only from this origin, no inline code, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Failed sign-ins per source: a burst of signinFailBurst, then one every
// 1/signinFailRate seconds.
const (
	signinFailRate  = 0.5
	signinFailBurst = 20
)

// Handler serves the dashboard under /ui/.
type Handler struct {
	svc      Service
	log      *slog.Logger
	now      func() time.Time
	tls      bool
	sessions *sessions
	tmpl     *templates
	mux      *http.ServeMux
	next     http.Handler // mux behind the cross-origin check
	fails    *ratelimit.Limiter[netip.Addr]
	oidc     *oidcLogin // nil: no identity provider sign-in
	// dnsProbes rate-limits the DNS tester per session (dnstest.go).
	dnsProbes *ratelimit.Limiter[string]
}

// New returns the dashboard handler. Mount it so that it sees the full
// path: mux.Handle("/ui/", ui.New(svc, opts)).
func New(svc Service, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Handler{svc: svc, log: opts.Logger.With("component", "ui"), now: opts.Now, tls: opts.TLS,
		sessions: newSessions(opts.Now, opts.Shared, opts.Logger.With("component", "ui")), tmpl: mustTemplates(), mux: http.NewServeMux(),
		fails:     ratelimit.New[netip.Addr](signinFailRate, signinFailBurst, 65536),
		dnsProbes: ratelimit.New[string](dnsProbeRate, dnsProbeBurst, maxDNSProbers)}
	h.oidc = newOIDCLogin(opts.OIDC, svc, h.log, opts.Now, opts.Shared)
	h.routes()
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, http.StatusForbidden, "cross-origin request refused: the dashboard accepts changes only from its own pages")
	}))
	h.next = cop.Handler(h.mux)
	return h
}

func (h *Handler) routes() {
	m := h.mux
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticHandler()))
	m.HandleFunc("GET /ui/{$}", h.home)
	m.HandleFunc("GET /ui/login", h.loginForm)
	m.HandleFunc("POST /ui/login", h.login)
	m.HandleFunc("POST /ui/login/oidc", h.oidcStart)
	m.HandleFunc("GET /ui/login/callback", h.oidcCallback)
	m.HandleFunc("POST /ui/logout", h.logout)
	m.Handle("GET /ui/peers", h.page(false, h.peers))
	m.Handle("GET /ui/peers/rows", h.page(false, h.peerRows))
	m.Handle("POST /ui/peers/delete", h.page(false, h.deletePeers))
	m.Handle("GET /ui/peers/{id}", h.page(false, h.peer))
	m.Handle("GET /ui/matrix", h.page(false, h.matrix))
	m.Handle("GET /ui/matrix/cells", h.page(false, h.matrixCells))
	m.Handle("GET /ui/setup-keys", h.page(true, h.setupKeys))
	m.Handle("POST /ui/setup-keys", h.page(true, h.createSetupKey))
	m.Handle("POST /ui/setup-keys/{id}/revoke", h.page(true, h.revokeSetupKey))
	m.Handle("GET /ui/groups", h.page(true, h.groups))
	m.Handle("POST /ui/groups", h.page(true, h.createGroup))
	m.Handle("POST /ui/groups/{id}/delete", h.page(true, h.deleteGroup))
	m.Handle("GET /ui/policies", h.page(true, h.policies))
	m.Handle("GET /ui/policies/new", h.page(true, h.newPolicy))
	m.Handle("POST /ui/policies", h.page(true, h.createPolicy))
	m.Handle("GET /ui/policies/{id}", h.page(true, h.editPolicy))
	m.Handle("POST /ui/policies/{id}", h.page(true, h.updatePolicy))
	m.Handle("POST /ui/policies/{id}/delete", h.page(true, h.deletePolicy))
	m.Handle("GET /ui/policies/file", h.page(true, h.policyFile))
	m.Handle("GET /ui/policies/file/current", h.page(true, h.currentPolicyFile))
	m.Handle("POST /ui/policies/file/preview", h.page(true, h.previewPolicyFile))
	m.Handle("POST /ui/policies/file/apply", h.page(true, h.applyPolicyFile))
	m.Handle("GET /ui/routes", h.page(true, h.routesPage))
	m.Handle("POST /ui/routes", h.page(true, h.createRoute))
	m.Handle("GET /ui/routes/{id}", h.page(true, h.editRoute))
	m.Handle("POST /ui/routes/{id}", h.page(true, h.updateRoute))
	m.Handle("POST /ui/routes/{id}/delete", h.page(true, h.deleteRoute))
	m.Handle("GET /ui/dns", h.page(true, h.dns))
	m.Handle("GET /ui/dns/test", h.page(false, h.dnsTestPage))
	m.Handle("POST /ui/dns/settings", h.page(true, h.updateDNSSettings))
	m.Handle("POST /ui/dns/nameservers", h.page(true, h.createNS))
	m.Handle("GET /ui/dns/nameservers/{id}", h.page(true, h.editNS))
	m.Handle("POST /ui/dns/nameservers/{id}", h.page(true, h.updateNS))
	m.Handle("POST /ui/dns/nameservers/{id}/delete", h.page(true, h.deleteNS))
	m.Handle("POST /ui/dns/zones", h.page(true, h.createZone))
	m.Handle("POST /ui/dns/zones/{id}/delete", h.page(true, h.deleteZone))
	m.Handle("POST /ui/dns/zones/{id}/records", h.page(true, h.addRecord))
	m.Handle("POST /ui/dns/zones/{id}/records/delete", h.page(true, h.deleteRecord))
	m.Handle("GET /ui/users", h.page(true, h.users))
	m.Handle("POST /ui/users/{id}/block", h.page(true, h.blockUser(true)))
	m.Handle("POST /ui/users/{id}/unblock", h.page(true, h.blockUser(false)))
	m.Handle("GET /ui/tokens", h.page(true, h.tokens))
	m.Handle("POST /ui/tokens/admin", h.page(true, h.createAdminToken))
	m.Handle("POST /ui/tokens/admin/{id}/delete", h.page(true, h.deleteAdminToken))
	m.Handle("POST /ui/tokens/access", h.page(true, h.createAccessToken))
	m.Handle("POST /ui/tokens/access/{id}/delete", h.page(true, h.deleteAccessToken))
	m.Handle("POST /ui/tokens/users/{id}/revoke", h.page(true, h.revokeUserToken))
	m.Handle("GET /ui/events", h.page(true, h.events))
	m.Handle("GET /ui/events/stream", h.page(false, h.stream))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		h.renderError(w, r, http.StatusNotFound, "no such page: "+r.URL.Path)
	})
}

// ServeHTTP sets the security headers of every response and dispatches.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cache-Control", "no-store") // static files override it
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
			h.renderError(w, r, http.StatusInternalServerError, "internal error")
		}
	}()
	h.next.ServeHTTP(w, r)
}

// secure reports whether the request came over TLS.
func (h *Handler) secure(r *http.Request) bool { return h.tls || r.TLS != nil }

func (h *Handler) cookieName(r *http.Request) string {
	if h.secure(r) {
		return cookieTLS
	}
	return cookiePlain
}

// req is one signed-in request.
type req struct {
	w    http.ResponseWriter
	r    *http.Request // its context carries the principal (WithPrincipal)
	sid  string
	p    management.Principal
	acct *model.Account // the account as of the start of the request
}

// ctx is the request context, carrying the principal for the audit log.
func (rq *req) ctx() context.Context { return rq.r.Context() }

// page wraps a handler that needs a signed-in user (an admin when admin is
// set). The token behind the session is checked against the account on
// every request.
func (h *Handler) page(admin bool, fn func(*req) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(h.cookieName(r))
		if err != nil {
			h.toLogin(w, r, "")
			return
		}
		sess, ok := h.sessions.get(c.Value)
		if !ok {
			h.toLogin(w, r, "expired")
			return
		}
		h.svc.CatchUp(r.Context(), sess.principal.AccountID) // what any instance committed before this request
		acct, err := h.svc.Snapshot(sess.principal.AccountID)
		if err != nil {
			h.renderError(w, r, management.KindOf(err).HTTPStatus(), errText(err))
			return
		}
		p, err := h.svc.Recheck(sess.principal, sess.tokenHash[:])
		if err != nil {
			h.sessions.remove(c.Value)
			http.SetCookie(w, sessionCookie(h.secure(r), "", -1))
			h.log.Info("session ended: its token no longer authenticates", "actor", sess.principal.Actor(), "reason", err)
			h.toLogin(w, r, "revoked")
			return
		}
		rq := &req{w: w, r: r.WithContext(management.WithPrincipal(r.Context(), p)), sid: c.Value, p: p, acct: acct}
		if admin && !p.IsAdmin() {
			h.render(rq, http.StatusForbidden, "error", "Forbidden", errorData{Status: http.StatusForbidden,
				Msg: "this page needs the admin role; you are signed in as " + who(p) + " (" + string(p.Role) + ")"})
			return
		}
		if err := fn(rq); err != nil {
			h.fail(rq, err)
		}
	})
}

// who names the principal for people.
func who(p management.Principal) string {
	switch {
	case p.Email != "":
		return p.Email
	case p.UserID != "":
		return p.UserID
	}
	return "the admin token"
}

// toLogin sends an unauthenticated request to the sign-in page. htmx
// requests get HX-Redirect so the whole page moves, not a fragment.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, reason string) {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	if r.Method == http.MethodGet && r.Header.Get("HX-Request") == "" && r.URL.Path != "/ui/events/stream" {
		q.Set("next", r.URL.RequestURI())
	}
	target := "/ui/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	if r.Header.Get("HX-Request") != "" || r.URL.Path == "/ui/events/stream" {
		w.Header().Set("HX-Redirect", target)
		http.Error(w, "sign in again", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// localNext accepts only a path of this dashboard as a post-sign-in target.
func localNext(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/ui/") ||
		strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n") || strings.HasPrefix(u.Path, "/ui/login") {
		return "/ui/peers"
	}
	return u.RequestURI()
}

// home sends signed-in browsers to the peers page, others to sign in.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(h.cookieName(r)); err == nil {
		if _, ok := h.sessions.get(c.Value); ok {
			http.Redirect(w, r, "/ui/peers", http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// badInput is a form or query error: 400 with the message, nothing changed.
func badInput(format string, args ...any) error {
	return management.Errorf(management.KindInvalid, format, args...)
}

// errText is the message shown for err: the service's text, except for
// internal errors, whose detail stays in the log.
func errText(err error) string {
	if management.KindOf(err) == management.KindInternal {
		return "internal error"
	}
	var me *management.Error
	if errors.As(err, &me) {
		return me.Error()
	}
	return err.Error()
}

// fail answers an error that reached the end of a handler as an error page.
func (h *Handler) fail(rq *req, err error) {
	status := management.KindOf(err).HTTPStatus()
	if status == http.StatusInternalServerError {
		h.log.Error("request failed", "method", rq.r.Method, "path", rq.r.URL.Path, "err", err)
	}
	h.render(rq, status, "error", "Error", errorData{Status: status, Msg: errText(err)})
}

// done redirects after a successful change (POST/redirect/GET) with a
// message for the next page.
func (h *Handler) done(rq *req, to, msg string) error {
	h.sessions.addFlash(rq.sid, flash{Msg: msg})
	http.Redirect(rq.w, rq.r, to, http.StatusSeeOther)
	return nil
}

// errFlash turns a service error into a flash message and its status.
func errFlash(err error) (int, flash) {
	return management.KindOf(err).HTTPStatus(), flash{Error: true, Msg: errText(err)}
}

// notFound is a 404 with the message.
func notFound(format string, args ...any) error {
	return management.Errorf(management.KindNotFound, format, args...)
}
