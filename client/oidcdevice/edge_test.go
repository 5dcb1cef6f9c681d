package oidcdevice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests here run against a hand-written provider on plain HTTP
// (loopback), for the answers a real provider does not give.

type reply struct {
	status int
	body   string
}

func jsonReply(status int, v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return reply{status, string(b)}
}

// script answers requests with its replies in order, repeating the last,
// and records the forms it was sent.
type script struct {
	mu      sync.Mutex
	replies []reply
	forms   []map[string][]string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if err := r.ParseForm(); err == nil {
		s.forms = append(s.forms, r.PostForm)
	}
	rp := s.replies[0]
	if len(s.replies) > 1 {
		s.replies = s.replies[1:]
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rp.status)
	_, _ = w.Write([]byte(rp.body))
}

func (s *script) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.forms)
}

// fakeIdP serves discovery, device authorization and token endpoints;
// nil replies take a well-formed default.
type fakeIdP struct {
	srv                 *httptest.Server
	disc, device, token *script
}

func newFakeIdP(t *testing.T, disc, device, token []reply) (*fakeIdP, *fakeTime, Config) {
	f := &fakeIdP{}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	u := f.srv.URL
	if disc == nil {
		disc = []reply{jsonReply(200, map[string]string{"issuer": u, "device_authorization_endpoint": u + "/device", "token_endpoint": u + "/token"})}
	}
	if device == nil {
		device = []reply{jsonReply(200, map[string]any{"device_code": "dc1", "user_code": "WXYZ-2345",
			"verification_uri": u + "/activate", "expires_in": 600, "interval": 5})}
	}
	if token == nil {
		token = []reply{jsonReply(400, map[string]string{"error": "authorization_pending"})}
	}
	f.disc, f.device, f.token = &script{replies: disc}, &script{replies: device}, &script{replies: token}
	mux.Handle(discoveryPath, f.disc)
	mux.Handle("/device", f.device)
	mux.Handle("/token", f.token)
	ft := &fakeTime{now: time.Now()}
	return f, ft, Config{Issuer: u, ClientID: "agent", HTTPClient: f.srv.Client(), Now: ft.Now, Sleep: ft.Sleep}
}

var tokenReply = jsonReply(200, map[string]any{"id_token": "h.p.s", "access_token": "at", "token_type": "Bearer", "expires_in": 3600})

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one with %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q lacks %q", err, p)
		}
	}
}

func TestWireFormat(t *testing.T) {
	f, _, cfg := newFakeIdP(t, nil, nil, []reply{tokenReply})
	cfg.Scopes = []string{"email", "groups"}
	tok, err := Login(context.Background(), cfg, new(strings.Builder))
	if err != nil {
		t.Fatal(err)
	}
	if tok.IDToken != "h.p.s" || tok.AccessToken != "at" || tok.Expiry.IsZero() {
		t.Fatalf("tokens %+v", tok)
	}
	dev, poll := f.device.forms[0], f.token.forms[0]
	if got := fmt.Sprint(dev); got != "map[client_id:[agent] scope:[openid email groups]]" {
		t.Fatalf("device authorization form %s", got)
	}
	if got := fmt.Sprint(poll); got != "map[client_id:[agent] device_code:[dc1] grant_type:["+grantDeviceCode+"]]" {
		t.Fatalf("token form %s", got)
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	f, _, cfg := newFakeIdP(t, nil, nil, nil)
	for _, iss := range []string{"https://idp.example.com", "", cfg.Issuer + "/"} {
		f.disc.replies = []reply{jsonReply(200, map[string]string{"issuer": iss,
			"device_authorization_endpoint": cfg.Issuer + "/device", "token_endpoint": cfg.Issuer + "/token"})}
		_, err := Start(context.Background(), cfg)
		wantErr(t, err, "discover "+cfg.Issuer, "not the configured issuer")
	}
	if n := f.device.calls(); n != 0 {
		t.Fatalf("device endpoint called %d times", n)
	}
}

func TestOversizedAnswer(t *testing.T) {
	// Valid JSON padded past the limit: only the limit refuses it.
	pad := func(r reply) reply { return reply{r.status, r.body + strings.Repeat(" ", maxBody)} }
	t.Run("discovery", func(t *testing.T) {
		f, _, cfg := newFakeIdP(t, nil, nil, nil)
		f.disc.replies = []reply{pad(jsonReply(200, map[string]string{"issuer": cfg.Issuer,
			"device_authorization_endpoint": cfg.Issuer + "/device", "token_endpoint": cfg.Issuer + "/token"}))}
		_, err := Start(context.Background(), cfg)
		wantErr(t, err, discoveryPath, "larger than 1048576 bytes")
	})
	t.Run("token", func(t *testing.T) {
		f, ft, cfg := newFakeIdP(t, nil, nil, []reply{pad(tokenReply)})
		a, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Wait(context.Background())
		wantErr(t, err, "poll token endpoint "+f.srv.URL+"/token", "larger than")
		if n := len(ft.Sleeps()); n != 1 {
			t.Fatalf("polled %d times", n)
		}
	})
}

func TestNonJSONAnswer(t *testing.T) {
	html := reply{200, "<html>sign in first</html>"}
	t.Run("discovery", func(t *testing.T) {
		_, _, cfg := newFakeIdP(t, []reply{html}, nil, nil)
		_, err := Start(context.Background(), cfg)
		wantErr(t, err, "GET "+cfg.Issuer+discoveryPath, "not a JSON object")
	})
	t.Run("device", func(t *testing.T) {
		_, _, cfg := newFakeIdP(t, nil, []reply{{404, "not here"}}, nil)
		_, err := Start(context.Background(), cfg)
		wantErr(t, err, "start device authorization at "+cfg.Issuer+"/device", "404 Not Found without an OAuth error")
	})
	t.Run("token", func(t *testing.T) {
		_, ft, cfg := newFakeIdP(t, nil, nil, []reply{html})
		a, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Wait(context.Background())
		wantErr(t, err, "poll token endpoint", "not a JSON object")
		if n := len(ft.Sleeps()); n != 1 {
			t.Fatalf("polled %d times", n)
		}
	})
}

func TestServerErrorsBackOff(t *testing.T) {
	unavailable := reply{503, "busy"}
	oauth500 := jsonReply(500, map[string]string{"error": "server_error"})
	pending := jsonReply(400, map[string]string{"error": "authorization_pending"})
	t.Run("recovers", func(t *testing.T) {
		_, ft, cfg := newFakeIdP(t, nil, nil, []reply{unavailable, oauth500, {429, ""}, unavailable, pending, tokenReply})
		a, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Four failures double the interval up to a minute; an OAuth
		// answer resets the count but not the interval.
		if got := ft.Sleeps(); !slices.Equal(got, secs(5, 10, 20, 40, 60, 60)) {
			t.Fatalf("slept %v", got)
		}
	})
	t.Run("five in a row", func(t *testing.T) {
		_, ft, cfg := newFakeIdP(t, nil, nil, []reply{unavailable, unavailable, unavailable, unavailable, oauth500})
		a, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Wait(context.Background())
		wantErr(t, err, "poll token endpoint", "500 Internal Server Error: server_error")
		if got := ft.Sleeps(); !slices.Equal(got, secs(5, 10, 20, 40, 60)) {
			t.Fatalf("slept %v", got)
		}
	})
}

// refuseTransport fails the test if any request is sent.
type refuseTransport struct{ t *testing.T }

func (r refuseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.t.Errorf("request sent to %s", req.URL)
	return nil, errors.New("refused by the test")
}

func TestPlainHTTPRefusedOffLoopback(t *testing.T) {
	cfg := Config{Issuer: "http://idp.example.com", ClientID: "agent", HTTPClient: &http.Client{Transport: refuseTransport{t}}}
	_, err := Start(context.Background(), cfg)
	wantErr(t, err, "issuer http://idp.example.com: https is required")
	for _, iss := range []string{"ftp://idp.example.com", "/relative", "idp.example.com"} {
		cfg.Issuer = iss
		if _, err := Start(context.Background(), cfg); err == nil {
			t.Fatalf("issuer %q accepted", iss)
		}
	}
	for _, iss := range []string{"http://127.0.0.1:1", "http://[::1]:1", "http://localhost:1", "https://idp.example.com"} {
		cfg.Issuer = iss
		if err := checkURL("issuer", iss); err != nil {
			t.Fatalf("issuer %q refused: %v", iss, err)
		}
	}

	// Endpoints from discovery obey the same rule, as do redirects.
	f, _, cfg := newFakeIdP(t, nil, nil, nil)
	f.disc.replies = []reply{jsonReply(200, map[string]string{"issuer": cfg.Issuer,
		"device_authorization_endpoint": "http://192.0.2.1/device", "token_endpoint": cfg.Issuer + "/token"})}
	_, err = Start(context.Background(), cfg)
	wantErr(t, err, "device authorization endpoint http://192.0.2.1/device: https is required")
	f.disc.replies = []reply{jsonReply(200, map[string]string{"issuer": cfg.Issuer,
		"device_authorization_endpoint": cfg.Issuer + "/device", "token_endpoint": "http://192.0.2.1/token"})}
	_, err = Start(context.Background(), cfg)
	wantErr(t, err, "token endpoint http://192.0.2.1/token: https is required")

	f, _, cfg = newFakeIdP(t, nil, nil, nil)
	f.disc.replies = []reply{jsonReply(200, map[string]string{"issuer": cfg.Issuer,
		"device_authorization_endpoint": cfg.Issuer + "/moved", "token_endpoint": cfg.Issuer + "/token"})}
	f.srv.Config.Handler.(*http.ServeMux).HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1/device", http.StatusPermanentRedirect)
	})
	cfg.RequestTimeout = 5 * time.Second
	_, err = Start(context.Background(), cfg)
	wantErr(t, err, "redirect target http://192.0.2.1/device: https is required")

	// A verification URI the user's phone would open in the clear.
	_, _, cfg = newFakeIdP(t, nil, []reply{jsonReply(200, map[string]any{"device_code": "d", "user_code": "u",
		"verification_uri": "http://idp.example.com/activate"})}, nil)
	_, err = Start(context.Background(), cfg)
	wantErr(t, err, "verification URI http://idp.example.com/activate: https is required")
	_, _, cfg = newFakeIdP(t, nil, []reply{jsonReply(200, map[string]any{"device_code": "d", "user_code": "u",
		"verification_uri": "https://idp.example.com/activate", "verification_uri_complete": "http://idp.example.com/activate?u"})}, nil)
	_, err = Start(context.Background(), cfg)
	wantErr(t, err, "verification URI http://idp.example.com/activate?u: https is required")
}

func TestProviderTextEscapedAndCut(t *testing.T) {
	desc := "bad\x1b[31mred\u202e" + strings.Repeat("x", 5000)
	_, _, cfg := newFakeIdP(t, nil, []reply{jsonReply(400, map[string]string{"error": "invalid_scope\n", "error_description": desc})}, nil)
	_, err := Start(context.Background(), cfg)
	wantErr(t, err, `invalid_scope\n (bad\x1b[31mred\u202exxx`, "x…)")
	if strings.ContainsAny(err.Error(), "\x1b\n\u202e") || len(err.Error()) > 600 {
		t.Fatalf("error not escaped or not cut: %q", err)
	}
}

func TestProviderVariants(t *testing.T) {
	// An older draft's verification_url, quoted numbers, no interval; a
	// token answer without an ID token.
	_, ft, cfg := newFakeIdP(t, nil, []reply{{200, `{"device_code":"d","user_code":"u","verification_url":"https://idp.example.com/dev","expires_in":"600"}`}},
		[]reply{jsonReply(200, map[string]any{"access_token": "at", "expires_in": "3600"})})
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.VerificationURI != "https://idp.example.com/dev" || a.Interval != 5*time.Second || !a.Expires.Equal(ft.Now().Add(10*time.Minute)) {
		t.Fatalf("authorization %+v", a)
	}
	if _, err := a.Wait(context.Background()); !errors.Is(err, ErrNoIDToken) {
		t.Fatalf("got %v", err)
	}
	for _, bad := range []string{`{"expires_in":-1}`, `{"expires_in":"soon"}`, `{"expires_in":1e300}`} {
		var d deviceAnswer
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Fatalf("%s accepted", bad)
		}
	}
}
