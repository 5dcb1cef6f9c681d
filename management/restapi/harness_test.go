package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/management/model"
	"petrel/management/store/sqlite"
	"petrel/proto/managementpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a real management.Service on a real SQLite store behind the REST
// handler on a loopback httptest server. The service signs users in
// through idp, a fake identity provider (users_test.go), and runs on
// clock, which tests may move forward.
type env struct {
	t     *testing.T
	store *sqlite.Store
	svc   *management.Service
	srv   *httptest.Server
	token string
	acct  string
	idp   *fakeIdP
	clock *testClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "petrel.db"), log)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	idp, clock := newFakeIdP(), &testClock{}
	svc, err := management.New(management.Config{Store: st, Logger: log, Now: clock.Now,
		Identity: &management.IdentityConfig{Verifier: idp, Issuer: fakeIssuer, ClientID: "petrel"}})
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("start service: %v", err)
	}
	token, created, err := svc.Bootstrap(ctx)
	if err != nil || !created {
		t.Fatalf("bootstrap: created=%v err=%v", created, err)
	}
	acct, ok := svc.AuthenticateToken(token)
	if !ok {
		t.Fatal("bootstrap token does not authenticate")
	}
	h := New(svc, log)
	h.(*server).authFails = nil // the tests send many wrong tokens; authlimit_test.go checks the limit
	h.(*server).now = clock.Now
	srv := httptest.NewServer(newContract(t, h))
	t.Cleanup(func() {
		srv.Close()
		svc.Stop()
		_ = st.Close()
	})
	return &env{t: t, store: st, svc: svc, srv: srv, token: token, acct: acct, idp: idp, clock: clock}
}

// do sends a request; body is sent raw if it is a string, else as JSON.
func (e *env) do(method, path string, body any) (int, []byte) {
	e.t.Helper()
	return e.doToken(e.token, method, path, body)
}

func (e *env) doToken(token, method, path string, body any) (int, []byte) {
	e.t.Helper()
	return e.send(token, method, path, mediaJSON, body)
}

// send sends a request with the given Content-Type (when it has a body).
func (e *env) send(token, method, path, contentType string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, out
}

// must sends a request, checks the status and decodes the response into out.
func (e *env) must(method, path string, body any, want int, out any) {
	e.t.Helper()
	st, b := e.do(method, path, body)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, st, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// patch sends a JSON merge patch, checks the status and decodes the
// response into out.
func (e *env) patch(path string, body any, want int, out any) {
	e.t.Helper()
	st, b := e.send(e.token, "PATCH", path, mediaMergePatch, body)
	if st != want {
		e.t.Fatalf("PATCH %s: status %d, want %d; body %s", path, st, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("PATCH %s: decode %s: %v", path, b, err)
		}
	}
}

// fails sends a request that must fail with status and code, with a message
// containing msg, and must change nothing.
func (e *env) fails(method, path string, body any, status int, code, msg string) {
	e.t.Helper()
	before := e.snapshot()
	st, b := e.do(method, path, body)
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil {
		e.t.Fatalf("%s %s: error body %q is not JSON: %v", method, path, b, err)
	}
	if st != status || eb.Code != code || !strings.Contains(eb.Error, msg) {
		e.t.Fatalf("%s %s: got %d %+v, want %d %s containing %q", method, path, st, eb, status, code, msg)
	}
	if after := e.snapshot(); !reflect.DeepEqual(before, after) {
		e.t.Fatalf("%s %s: failed request changed the account", method, path)
	}
}

func (e *env) snapshot() *model.Account {
	e.t.Helper()
	a, err := e.svc.Snapshot(e.acct)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// setupKey creates a reusable setup key through the API.
func (e *env) setupKey() string {
	e.t.Helper()
	var k setupKeyView
	e.must("POST", "/api/setup-keys", map[string]any{"name": "test", "reusable": true}, 201, &k)
	return k.Key
}

// addPeer registers a peer through the service's Login, as an agent would.
func (e *env) addPeer(setupKey, hostname string) *model.Peer {
	e.t.Helper()
	priv, err := keys.NewPrivate()
	if err != nil {
		e.t.Fatal(err)
	}
	_, err = e.svc.Login(context.Background(), priv.Public(), &managementpb.LoginRequest{SetupKey: setupKey, Hostname: hostname})
	if err != nil {
		e.t.Fatalf("login %s: %v", hostname, err)
	}
	for _, p := range e.snapshot().Peers {
		if p.PublicKey == priv.Public().String() {
			return p
		}
	}
	e.t.Fatalf("peer %s not in snapshot", hostname)
	return nil
}
