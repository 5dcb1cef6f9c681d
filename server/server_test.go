package server

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/management"
	"petrel/proto/managementpb"
	relayclient "petrel/relay/client"
	signalclient "petrel/signal/client"
)

type policyJSON struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
}

type peerJSON struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
}

// loginPeer registers a new peer with setupKey over gRPC at url; the
// client is closed at cleanup.
func loginPeer(t *testing.T, url, setupKey, hostname string) (*mgmt.Client, keys.Private, *managementpb.LoginResponse) {
	t.Helper()
	ctx := testCtx(t)
	mc, err := mgmt.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	priv, _ := keys.NewPrivate()
	login, err := mc.Login(ctx, priv, &managementpb.LoginRequest{SetupKey: setupKey, Hostname: hostname})
	if err != nil {
		t.Fatalf("login over gRPC: %v", err)
	}
	return mc, priv, login
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestServesEverythingOnOnePort(t *testing.T) {
	dir := t.TempDir()
	ctx := testCtx(t)
	srv := start(t, loopbackConfig(t, dir))
	base := "http://" + srv.Addr().String()
	if srv.PublicURL() != base || srv.RelayURL() != "rel://"+srv.Addr().String() {
		t.Fatalf("endpoints %+v", srv.Endpoints())
	}

	// First start: token file and database are private, the token is the
	// one AdminToken reports, and the default policy exists.
	for _, f := range []string{AdminTokenFile, "petrel.db", RelaySecretFile} {
		if m := fileMode(t, filepath.Join(dir, f)); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, m)
		}
	}
	token := readToken(t, srv)
	if token == "" || token != srv.AdminToken() {
		t.Fatalf("token file %q, AdminToken %q", token, srv.AdminToken())
	}
	var policies []policyJSON
	if code := getJSON(t, base, "/api/policies", token, &policies); code != 200 || len(policies) != 1 || policies[0].Name != "Default" || !policies[0].Enabled {
		t.Fatalf("policies: %d %+v", code, policies)
	}
	if code := getJSON(t, base, "/api/peers", "ptok_wrong", nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code := getJSON(t, base, "/healthz", "", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}

	// gRPC (HTTP/2 prior knowledge) on the same port: register a peer.
	svc := srv.Management()
	_, setupKey, err := svc.CreateSetupKey(ctx, svc.Accounts()[0], management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	mc, priv, login := loginPeer(t, base, setupKey, "agent-one")
	sc := login.GetServerConfig()
	stunURL := "stun:127.0.0.1:" + strings.Split(srv.STUNAddr().String(), ":")[1]
	if sc.GetSignalUrl() != base || len(sc.GetStunUrls()) != 2 || sc.GetStunUrls()[0] != stunURL ||
		!strings.HasPrefix(sc.GetStunUrls()[1], "stun:127.0.0.1:") || sc.GetStunUrls()[1] == stunURL ||
		strings.Join(sc.GetRelay().GetUrls(), " ") != srv.RelayURL() || sc.GetRelay().GetToken() == "" {
		t.Fatalf("server config: %v", sc)
	}

	// Signal, pinned to the management key, registers on the same port.
	sig := signalclient.New(signalclient.Config{Target: srv.Addr().String(), Key: priv, ServerKey: svc.ServerKey().Public()})
	if err := sig.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "signal registration", sig.Connected)
	sig.Stop()

	// The relay WebSocket (HTTP/1.1 upgrade) with the token management minted.
	rc := relayclient.New(relayclient.Config{URLs: sc.GetRelay().GetUrls(), Key: priv.Public(), Token: func() string { return sc.GetRelay().GetToken() }})
	if err := rc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "relay home connection", rc.Connected)
	if rc.HomeURL() != srv.RelayURL() {
		t.Errorf("relay home %q", rc.HomeURL())
	}
	rc.Stop()

	stunBinding(t, srv.STUNAddr().String())

	// A live Sync stream shows as connected; Stop ends it rather than
	// waiting for it.
	syncCtx, syncCancel := context.WithCancel(ctx)
	defer syncCancel()
	syncDone := make(chan error, 1)
	go func() {
		syncDone <- mc.Sync(syncCtx, priv, &managementpb.SyncRequest{}, func(*managementpb.SyncResponse) error { return nil })
	}()
	waitFor(t, "peer connected in REST", func() bool {
		var peers []peerJSON
		return getJSON(t, base, "/api/peers", token, &peers) == 200 && len(peers) == 1 && peers[0].Connected
	})
	srv.Stop()
	if err := <-syncDone; err == nil {
		t.Fatal("sync stream survived the server")
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := srv.Err(); err != nil {
		t.Fatalf("Err after Stop: %v", err)
	}

	// Restart on the same data dir: same token, same peer, same server key,
	// and no second default policy.
	srv2 := start(t, loopbackConfig(t, dir))
	base2 := "http://" + srv2.Addr().String()
	if readToken(t, srv2) != token || srv2.AdminToken() != "" {
		t.Fatal("admin token changed on restart")
	}
	var peers []peerJSON
	if code := getJSON(t, base2, "/api/peers", token, &peers); code != 200 || len(peers) != 1 || peers[0].Name != "agent-one" {
		t.Fatalf("peers after restart: %d %+v", code, peers)
	}
	if getJSON(t, base2, "/api/policies", token, &policies); len(policies) != 1 {
		t.Fatalf("policies after restart: %+v", policies)
	}
	mc2, err := mgmt.Dial(ctx, base2)
	if err != nil {
		t.Fatal(err)
	}
	defer mc2.Close()
	if _, err := mc2.Login(ctx, priv, &managementpb.LoginRequest{}); err != nil {
		t.Fatalf("re-login after restart: %v", err)
	}
}

func TestComponentsAlone(t *testing.T) {
	ctx := testCtx(t)
	// A full run first, so that the store holds an account and a server key.
	shared := t.TempDir()
	full := start(t, loopbackConfig(t, shared))
	mgmtKey := full.Management().ServerKey().Public()
	full.Stop()

	t.Run("relay", func(t *testing.T) {
		dir := t.TempDir()
		srv := start(t, Config{DataDir: dir, Listen: "127.0.0.1:0", Components: Components{Relay: true},
			RelayInstanceURL: "rel://eu-1.relay.example.net:8080", Logger: testLog(t)})
		base := "http://" + srv.Addr().String()
		for path, want := range map[string]int{"/healthz": 200, "/api/peers": 404} {
			if code := getJSON(t, base, path, "", nil); code != want {
				t.Fatalf("%s: %d, want %d", path, code, want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "petrel.db")); !os.IsNotExist(err) {
			t.Fatalf("relay alone opened a store: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, RelaySecretFile)); err != nil {
			t.Fatalf("relay secret not created: %v", err)
		}
		if srv.RelayURL() != "rel://eu-1.relay.example.net:8080" || srv.Management() != nil || srv.STUNAddr() != nil {
			t.Fatalf("relay %q mgmt %v stun %v", srv.RelayURL(), srv.Management(), srv.STUNAddr())
		}
	})

	// Signal alone uses the server key from the store: agents that pin the
	// management key register.
	t.Run("signal with store", func(t *testing.T) {
		srv := start(t, Config{DataDir: shared, Listen: "127.0.0.1:0", Components: Components{Signal: true}, Logger: testLog(t)})
		priv, _ := keys.NewPrivate()
		sig := signalclient.New(signalclient.Config{Target: srv.Addr().String(), Key: priv, ServerKey: mgmtKey})
		if err := sig.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer sig.Stop()
		waitFor(t, "signal registration with the management key", sig.Connected)
	})

	// Signal alone with a key file opens no store.
	t.Run("signal with key file", func(t *testing.T) {
		dir := t.TempDir()
		keyFile := filepath.Join(dir, "signal.key")
		srv := start(t, Config{DataDir: dir, Listen: "127.0.0.1:0", Components: Components{Signal: true},
			SignalKeyFile: keyFile, Logger: testLog(t)})
		if m := fileMode(t, keyFile); m != 0o600 {
			t.Fatalf("key file mode %v", m)
		}
		if _, err := os.Stat(filepath.Join(dir, "petrel.db")); !os.IsNotExist(err) {
			t.Fatalf("signal with a key file opened a store: %v", err)
		}
		key, _, err := keys.LoadOrCreatePrivate(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		priv, _ := keys.NewPrivate()
		sig := signalclient.New(signalclient.Config{Target: srv.Addr().String(), Key: priv, ServerKey: key.Public()})
		if err := sig.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer sig.Stop()
		waitFor(t, "signal registration with the key file's key", sig.Connected)
	})

	// Management alone advertises only the relays it is told about, with
	// tokens minted from the shared secret.
	t.Run("management", func(t *testing.T) {
		srv := start(t, Config{DataDir: shared, Listen: "127.0.0.1:0", Components: Components{Management: true},
			RelayURLs: []string{"rel://relay.example.net:8080"}, STUNURLs: []string{"stun:stun.example.net:3478"}, Logger: testLog(t)})
		svc := srv.Management()
		_, setupKey, err := svc.CreateSetupKey(ctx, svc.Accounts()[0], management.SetupKeyInput{Name: "m"})
		if err != nil {
			t.Fatal(err)
		}
		_, _, login := loginPeer(t, srv.PublicURL(), setupKey, "m")
		sc := login.GetServerConfig()
		if strings.Join(sc.GetRelay().GetUrls(), " ") != "rel://relay.example.net:8080" || sc.GetRelay().GetToken() == "" ||
			strings.Join(sc.GetStunUrls(), " ") != "stun:stun.example.net:3478" || srv.RelayURL() != "" {
			t.Fatalf("server config %v, relay %q", sc, srv.RelayURL())
		}
	})
}

func TestLifecycle(t *testing.T) {
	t.Run("stop before start, start after stop", func(t *testing.T) {
		srv, err := New(loopbackConfig(t, t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		srv.Stop()
		srv.Stop()
		if err := srv.Start(testCtx(t)); err == nil {
			t.Fatal("Start after Stop succeeded")
		}
		<-srv.Done()
	})

	t.Run("start twice", func(t *testing.T) {
		srv := start(t, loopbackConfig(t, t.TempDir()))
		if err := srv.Start(testCtx(t)); err == nil {
			t.Fatal("second Start succeeded")
		}
	})

	// A failed Start rolls back what it started (goleak checks the
	// goroutines; the rebind checks the sockets).
	t.Run("failed start rolls back", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		for name, cfg := range map[string]Config{
			"listen busy": {Listen: busy.Addr().String()},
			"store fails": {Listen: "127.0.0.1:0", Store: "sqlite://" + filepath.Join(t.TempDir(), "missing", "dir", "x.db")},
		} {
			t.Run(name, func(t *testing.T) {
				cfg.DataDir, cfg.Logger, cfg.STUNListen = t.TempDir(), testLog(t), "127.0.0.1:0"
				srv, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := srv.Start(testCtx(t)); err == nil {
					t.Fatal("Start succeeded")
				}
				<-srv.Done()
				urls := srv.Endpoints().STUNURLs
				if name == "store fails" && len(urls) == 0 {
					t.Fatal("STUN was not started before the store failed")
				}
				if len(urls) > 0 {
					udp, err := net.ListenPacket("udp", strings.TrimPrefix(urls[0], "stun:"))
					if err != nil {
						t.Fatalf("STUN socket still bound: %v", err)
					}
					udp.Close()
				}
				srv.Stop()
			})
		}
	})

	// Connections that never finish the preface, and idle HTTP/1.1 and
	// HTTP/2 connections, do not hold Stop up.
	t.Run("stop with idle connections", func(t *testing.T) {
		// The stalled HTTP/2 handshake keeps gRPC from stopping gracefully:
		// Stop closes it at the shutdown deadline.
		cfg := loopbackConfig(t, t.TempDir())
		cfg.ShutdownTimeout = time.Second
		srv := start(t, cfg)
		var conns []net.Conn
		for _, first := range []string{"", "PRI * HT", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"} {
			c, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if _, err := c.Write([]byte(first)); err != nil {
				t.Fatal(err)
			}
		}
		srv.Stop()
		for _, c := range conns {
			c.Close()
		}
	})
}
