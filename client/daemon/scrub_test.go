package daemon_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"petrel/client/daemon"
	"petrel/management"
	"petrel/proto/daemonpb"
	"petrel/relay/auth"
	"petrel/server"
)

// syncBuf is a log sink shared by goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func debugLog(w *syncBuf) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var tokenRE = regexp.MustCompile(`[A-Za-z0-9_-]{` + strconv.Itoa(auth.TokenLen) + `}`)

func dialDaemonSocket(t *testing.T, sock string) daemonpb.DaemonClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return daemonpb.NewDaemonClient(conn)
}

// Register, log in, sync, signal and relay (two agents forced onto the
// relay), an admin request and a failed one, everything at debug level:
// no log line and no state file but the key file may hold a setup key,
// the admin token, a relay token, the relay secret or a private key.
func TestNoSecretsInLogsOrState(t *testing.T) {
	var srvLog, agentLog syncBuf
	data := t.TempDir()
	srv, err := server.New(server.Config{DataDir: data, Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0", Logger: debugLog(&srvLog)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	m := srv.Management()
	_, setupKey, err := m.CreateSetupKey(ctx, m.Accounts()[0], management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	var clients []daemonpb.DaemonClient
	for _, name := range []string{"alpha", "bravo"} {
		dir := shortDir(t)
		d := daemon.New(daemon.Options{StateDir: dir, Netstack: true, SOCKS5Addr: "127.0.0.1:0", ForceRelay: true,
			Logger: debugLog(&agentLog)})
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer d.Stop()
		cl := dialDaemonSocket(t, d.Socket())
		if err := up(cl, &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), SetupKey: setupKey, Hostname: name, TimeoutMs: 20000}); err != nil {
			t.Fatal(err)
		}
		dirs, clients = append(dirs, dir), append(clients, cl)
	}
	for _, cl := range clients {
		waitStatus(t, cl, "relayed peer", 60*time.Second, func(st *daemonpb.StatusResponse) bool { return peerVia(st, "relay") })
	}
	if err := ping(t, clients[0], "bravo"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{srv.AdminToken(), "ptok_" + strings.Repeat("z", 52)} {
		req, _ := http.NewRequest("GET", srv.PublicURL()+"/api/peers", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	for _, cl := range clients {
		if _, err := cl.Down(context.Background(), &daemonpb.DownRequest{}); err != nil {
			t.Fatal(err)
		}
	}

	secrets := map[string]string{"setup key": setupKey, "admin token": srv.AdminToken(),
		"server private key": m.ServerKey().String()}
	if b, err := os.ReadFile(filepath.Join(data, server.RelaySecretFile)); err == nil {
		secrets["relay secret"] = strings.TrimSpace(string(b))
		raw, _ := base64.StdEncoding.DecodeString(secrets["relay secret"])
		secrets["relay secret (raw)"] = string(raw)
	} else {
		t.Fatal(err)
	}
	for i, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, daemon.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		secrets["agent private key "+string(rune('A'+i))] = strings.TrimSpace(string(b))
	}
	secret, _ := base64.StdEncoding.DecodeString(secrets["relay secret"])
	check := func(where, text string) {
		for name, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s holds the %s", where, name)
			}
		}
		for _, cand := range tokenRE.FindAllString(text, -1) {
			if p, err := auth.Parse(cand); err == nil && auth.Verify(secret, cand, p.Peer, time.Now()) == nil {
				t.Errorf("%s holds a valid relay token", where)
			}
		}
	}
	if !strings.Contains(srvLog.String(), "level=DEBUG") || !strings.Contains(agentLog.String(), "level=DEBUG") {
		t.Fatal("debug logging was not on")
	}
	check("the server log", srvLog.String())
	check("the agents' log", agentLog.String())
	for _, dir := range dirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() || e.Name() == daemon.KeyFile {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				continue // the socket
			}
			check("state file "+e.Name(), string(b))
		}
	}
}
