package ui

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"petrel/management"
)

// maxFormBytes bounds every form body.
const maxFormBytes = 1 << 20

type loginData struct {
	Next   string
	Reason string
	// OIDC names the identity provider of "Sign in with ..." ("" when
	// the server has none).
	OIDC string
}

// loginReasons are the fixed notices the sign-in page shows (reason=...);
// nothing from the URL is echoed.
var loginReasons = map[string]string{
	"expired":    "Your session ended; sign in again.",
	"revoked":    "The token behind your session no longer works (revoked, expired or its user blocked); sign in again.",
	"signed-out": "You are signed out.",
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	d := loginData{Next: localNext(r.URL.Query().Get("next")), Reason: loginReasons[r.URL.Query().Get("reason")], OIDC: h.oidcName()}
	h.setLoginCSP(w)
	h.write(w, r, http.StatusOK, "login", "layout", view{Title: "Sign in", Nav: "login", Data: d})
}

func (h *Handler) loginError(w http.ResponseWriter, r *http.Request, status int, next, msg string) {
	h.setLoginCSP(w)
	h.write(w, r, status, "login", "layout", view{Title: "Sign in", Nav: "login",
		Flash: []flash{{Error: true, Msg: msg}}, Data: loginData{Next: next, OIDC: h.oidcName()}})
}

// login takes an admin token or a personal access token from the form
// (never from the URL), checks it with the service and opens a session.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.loginError(w, r, http.StatusBadRequest, "/ui/peers", "unreadable form")
		return
	}
	next := localNext(r.PostForm.Get("next"))
	src := sourceAddr(r)
	if ok, wait := h.fails.Check(src); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		h.loginError(w, r, http.StatusTooManyRequests, next,
			fmt.Sprintf("too many failed sign-ins from %s; retry in %v", src, time.Duration(secs)*time.Second))
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	if token == "" {
		h.loginError(w, r, http.StatusBadRequest, next, "enter an admin token or a personal access token")
		return
	}
	p, err := h.svc.Authenticate(r.Context(), token)
	if err == nil && p.Via != "admin-token" && p.Via != "access-token" {
		// An OpenID access token expires at the provider's pace and
		// cannot be re-checked from a hash; people sign in with the
		// provider through the authorization-code flow (oidc.go).
		msg := "sign in with an admin token or a personal access token"
		if h.oidc != nil {
			msg += ", or with " + h.oidc.cfg.Name
		}
		err = management.Errorf(management.KindUnauthenticated, "%s", msg)
	}
	if err != nil {
		if management.KindOf(err) == management.KindUnauthenticated {
			h.fails.Allow(src)
		}
		h.log.Info("dashboard sign-in failed", "source", src, "reason", errText(err))
		msg := errText(err)
		if msg == "token rejected" || msg == "no token" {
			msg = "token rejected: give an admin token (ptok_…) or a personal access token (ppat_…)"
		}
		h.loginError(w, r, management.KindOf(err).HTTPStatus(), next, msg)
		return
	}
	h.endOldSession(r)
	id, err := h.sessions.create(p, token)
	if err != nil {
		h.log.Error("create session", "err", err)
		h.loginError(w, r, http.StatusInternalServerError, next, "internal error")
		return
	}
	http.SetCookie(w, sessionCookie(h.secure(r), id, int(absoluteTimeout/time.Second)))
	h.log.Info("dashboard sign-in", "actor", p.Actor(), "source", src)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session (if any) and clears the cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(h.cookieName(r)); err == nil {
		h.sessions.remove(c.Value)
	}
	http.SetCookie(w, sessionCookie(h.secure(r), "", -1))
	http.Redirect(w, r, "/ui/login?reason=signed-out", http.StatusSeeOther)
}

// sourceAddr is the request's remote address (the zero Addr if unparsable).
func sourceAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// setLoginCSP lets the sign-in page's form lead to the identity provider.
func (h *Handler) setLoginCSP(w http.ResponseWriter) {
	if h.oidc != nil {
		w.Header().Set("Content-Security-Policy", h.oidc.loginCSP())
	}
}

// endOldSession ends the session this browser held before signing in
// again, so that no earlier cookie stays valid beside the new one.
func (h *Handler) endOldSession(r *http.Request) {
	if c, err := r.Cookie(h.cookieName(r)); err == nil && c.Value != "" {
		h.sessions.remove(c.Value)
	}
}
