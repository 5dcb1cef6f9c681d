package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	pstun "github.com/pion/stun/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// deadline bounds every wait for a condition.
const deadline = 30 * time.Second

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*deadline)
	t.Cleanup(cancel)
	return ctx
}

// loopbackConfig runs everything on loopback ports chosen by the kernel.
func loopbackConfig(t testing.TB, dir string) Config {
	return Config{DataDir: dir, Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0", Logger: testLog(t)}
}

// start creates and starts a server, stopped at cleanup.
func start(t testing.TB, cfg Config) *Server {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := srv.Start(testCtx(t)); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(deadline)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readToken reads the admin token file.
func readToken(t testing.TB, srv *Server) string {
	t.Helper()
	b, err := os.ReadFile(srv.TokenFile())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// getJSON calls the REST API over HTTP/1.1 and decodes the answer into out
// (if non-nil); it returns the status code.
func getJSON(t testing.TB, base, path, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 1 {
		t.Errorf("GET %s answered over HTTP/%d", path, resp.ProtoMajor)
	}
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: decode %q: %v", path, b, err)
		}
	}
	return resp.StatusCode
}

// stunBinding checks that a STUN binding request at addr is answered.
func stunBinding(t testing.TB, addr string) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest)
	buf := make([]byte, 1500)
	end := time.Now().Add(deadline)
	for time.Now().Before(end) {
		if _, err := conn.Write(req.Raw); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		res := &pstun.Message{Raw: buf[:n]}
		var xor pstun.XORMappedAddress
		if res.Decode() == nil && xor.GetFrom(res) == nil {
			return
		}
	}
	t.Fatal("no STUN binding response")
}
