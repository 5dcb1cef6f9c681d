package oidctest

import (
	"crypto/subtle"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// devicePath is the verification URI of RFC 8628 (section 3.2): the user
// opens it, enters the user code, signs in and allows or denies.
const devicePath = "/device"

const sessionCookie = "oidctest_device"

// session is a user signed in on the approval page for one user code; the
// consent form must carry its csrf value.
type session struct {
	userCode string
	subject  string
	csrf     string
}

// devicePages serves the approval pages: GET /device (enter the code, or
// with ?user_code= the sign-in form), POST /device/login (sign in; shows
// the consent form), POST /device/confirm (allow or deny).
type devicePages struct{ st *storage }

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><link rel="icon" href="data:,"><title>{{if eq .Step "signin"}}Sign in{{else}}Device sign-in{{end}}</title></head><body>
{{if .Error}}<p class="error">{{.Error}}</p>{{end}}
{{if eq .Step "code"}}
<form method="get" action="/device">
<label>Code shown on the device <input name="user_code"></label>
<button type="submit">Continue</button>
</form>
{{else if eq .Step "login"}}
<form method="post" action="/device/login">
<input type="hidden" name="user_code" value="{{.UserCode}}">
<label>Username or email <input name="username"></label>
<label>Password <input type="password" name="password"></label>
<button type="submit">Sign in</button>
</form>
{{else if eq .Step "signin"}}
<p>Sign in to <b>{{.ClientID}}</b></p>
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.RequestID}}">
<label>Username or email <input name="username" id="username"></label>
<label>Password <input type="password" name="password" id="password"></label>
<button type="submit" name="action" value="allow" id="login">Sign in</button>
<button type="submit" name="action" value="deny" id="deny">Deny</button>
</form>
{{else if eq .Step "consent"}}
<p>Allow <b>{{.ClientID}}</b> to sign in as <b>{{.Subject}}</b> (scopes: {{.Scopes}})?</p>
<form method="post" action="/device/confirm">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<button type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>
{{else}}
<p class="result">{{.Result}}</p>
{{end}}
</body></html>
`))

type pageData struct {
	Step, Error, UserCode, ClientID, Subject, Scopes, CSRF, Result, RequestID string
}

func render(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

func (p *devicePages) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == devicePath && r.Method == http.MethodGet:
		p.start(w, r)
	case r.URL.Path == devicePath+"/login" && r.Method == http.MethodPost:
		p.login(w, r)
	case r.URL.Path == devicePath+"/confirm" && r.Method == http.MethodPost:
		p.confirm(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

func (p *devicePages) start(w http.ResponseWriter, r *http.Request) {
	code := normCode(r.URL.Query().Get("user_code"))
	if code == "" {
		render(w, http.StatusOK, pageData{Step: "code"})
		return
	}
	p.st.mu.Lock()
	_, err := p.st.pending(code)
	p.st.mu.Unlock()
	if err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "code", Error: err.Error()})
		return
	}
	render(w, http.StatusOK, pageData{Step: "login", UserCode: code})
}

func (p *devicePages) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "code", Error: "bad form"})
		return
	}
	code := normCode(r.PostForm.Get("user_code"))
	st := p.st
	st.mu.Lock()
	e, err := st.pending(code)
	if err != nil {
		st.mu.Unlock()
		render(w, http.StatusBadRequest, pageData{Step: "code", Error: err.Error()})
		return
	}
	u, ok := st.lookupUser(r.PostForm.Get("username"))
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(r.PostForm.Get("password"))) != 1 {
		st.mu.Unlock()
		render(w, http.StatusUnauthorized, pageData{Step: "login", UserCode: code, Error: "wrong username or password"})
		return
	}
	sess := &session{userCode: code, subject: u.Subject, csrf: randomString(16)}
	id := randomString(16)
	st.sessions[id] = sess
	scopes := strings.Join(e.state.Scopes, " ")
	st.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: devicePath,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	render(w, http.StatusOK, pageData{Step: "consent", ClientID: st.client.id, Subject: u.Subject, Scopes: scopes, CSRF: sess.csrf})
}

func (p *devicePages) confirm(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		render(w, http.StatusForbidden, pageData{Step: "code", Error: "not signed in"})
		return
	}
	if err := r.ParseForm(); err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "code", Error: "bad form"})
		return
	}
	st := p.st
	st.mu.Lock()
	sess, ok := st.sessions[c.Value]
	if ok && subtle.ConstantTimeCompare([]byte(sess.csrf), []byte(r.PostForm.Get("csrf"))) != 1 {
		ok = false
	}
	if ok {
		delete(st.sessions, c.Value) // one decision per sign-in
	}
	st.mu.Unlock()
	if !ok {
		render(w, http.StatusForbidden, pageData{Step: "code", Error: "session unknown or form forged"})
		return
	}
	var allow bool
	switch r.PostForm.Get("action") {
	case "allow":
		allow = true
	case "deny":
	default:
		render(w, http.StatusBadRequest, pageData{Step: "code", Error: "choose allow or deny"})
		return
	}
	if err := st.decide(sess.userCode, sess.subject, allow); err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "code", Error: err.Error()})
		return
	}
	result := "Device denied."
	if allow {
		result = "Device approved. You can return to the device."
	}
	render(w, http.StatusOK, pageData{Step: "done", Result: result})
}

// normCode accepts a user code as people type it: any case, with or
// without the dash.
func normCode(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	s = strings.ReplaceAll(s, "-", "")
	if len(s) == 8 {
		s = s[:4] + "-" + s[4:]
	}
	return s
}

// loginPath is the code flow's sign-in page: the OP redirects the browser
// there from /authorize (webClient.LoginURL) with the auth request's ID.
const loginPath = "/login"

// loginPage serves GET /login?id= (the form) and POST /login: "allow"
// with the right credentials completes the request and sends the browser
// to the OP's /authorize/callback, which redirects to the client with a
// code; "deny" sends the client error=access_denied.
type loginPage struct {
	st     *storage
	op     *op.Provider
	issuer string
}

func (p *loginPage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		id := r.URL.Query().Get("id")
		client, err := p.st.requestClient(id)
		if err != nil {
			render(w, http.StatusBadRequest, pageData{Step: "done", Error: err.Error()})
			return
		}
		render(w, http.StatusOK, pageData{Step: "signin", RequestID: id, ClientID: client})
	case http.MethodPost:
		p.post(w, r)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (p *loginPage) post(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "done", Error: "bad form"})
		return
	}
	id := r.PostForm.Get("id")
	switch r.PostForm.Get("action") {
	case "deny":
		req, err := p.st.takeAuthRequest(id)
		if err != nil {
			render(w, http.StatusBadRequest, pageData{Step: "done", Error: err.Error()})
			return
		}
		op.AuthRequestError(w, r, req, oidc.ErrAccessDenied().WithDescription("the user denied the sign-in"), p.op)
		return
	case "allow":
	default:
		render(w, http.StatusBadRequest, pageData{Step: "done", Error: "choose sign in or deny"})
		return
	}
	client, err := p.st.requestClient(id)
	if err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "done", Error: err.Error()})
		return
	}
	p.st.mu.Lock()
	u, ok := p.st.lookupUser(r.PostForm.Get("username"))
	p.st.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(r.PostForm.Get("password"))) != 1 {
		render(w, http.StatusUnauthorized, pageData{Step: "signin", RequestID: id, ClientID: client, Error: "wrong username or password"})
		return
	}
	if err := p.st.completeLogin(id, u.Subject); err != nil {
		render(w, http.StatusBadRequest, pageData{Step: "done", Error: err.Error()})
		return
	}
	callback := p.op.AuthorizationEndpoint().Absolute(p.issuer) + "/callback?id=" + url.QueryEscape(id)
	http.Redirect(w, r, callback, http.StatusFound)
}
