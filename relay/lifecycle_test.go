package relay_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"

	"petrel/internal/keys"
	"petrel/relay"
	"petrel/relay/client"
	"petrel/relay/frame"
)

// startRelayCfg starts a standalone relay with a modified config.
func startRelayCfg(t *testing.T, mod func(*relay.Config)) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := relay.Config{InstanceURL: "rel://" + ln.Addr().String(), Secret: testSecret}
	mod(&cfg)
	srv, err := relay.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.StartOn(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &instance{srv: srv, url: cfg.InstanceURL, ws: "ws://" + ln.Addr().String() + relay.Path}
}

func TestNewServerValidates(t *testing.T) {
	for name, cfg := range map[string]relay.Config{
		"no url":      {Secret: testSecret},
		"bad scheme":  {InstanceURL: "http://x:1", Secret: testSecret},
		"weak secret": {InstanceURL: "rel://x:1", Secret: []byte("short")},
	} {
		if _, err := relay.NewServer(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSilentConnectionsClosed(t *testing.T) {
	in := startRelayCfg(t, func(c *relay.Config) {
		c.AuthTimeout = 200 * time.Millisecond
		c.IdleTimeout = 300 * time.Millisecond
	})
	// Never authenticates.
	ws := rawDial(t, in.ws)
	readUntilClosed(t, ws)
	// Authenticates, then stays silent.
	_, pub := newKey(t)
	ws2 := rawDial(t, in.ws)
	if f, err := rawAuth(t, ws2, pub, token(pub)); err != nil || f.Type != frame.TypeAuthOK {
		t.Fatalf("auth: %+v %v", f, err)
	}
	readUntilClosed(t, ws2)
	waitFor(t, "connections released", func() bool { return in.srv.Stats().Conns == 0 })
}

func TestNewConnectionReplacesOld(t *testing.T) {
	in := startRelay(t, "", nil)
	b := startPeer(t, in.url)
	waitFor(t, "connected", b.c.Connected)
	_, pub := newKey(t)
	old := rawDial(t, in.ws)
	if f, err := rawAuth(t, old, pub, token(pub)); err != nil || f.Type != frame.TypeAuthOK {
		t.Fatalf("auth: %+v %v", f, err)
	}
	cur := rawDial(t, in.ws)
	if f, err := rawAuth(t, cur, pub, token(pub)); err != nil || f.Type != frame.TypeAuthOK {
		t.Fatalf("auth: %+v %v", f, err)
	}
	if st := readUntilClosed(t, old); st != websocket.StatusPolicyViolation {
		t.Fatalf("old connection closed with %v", st)
	}
	// Packets for the key reach the new connection.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		b.c.Send(pub, "", []byte("to new"))
		rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, m, err := cur.Read(rctx)
		rcancel()
		if err == nil {
			f, err := frame.Decode(m)
			if err == nil && f.Type == frame.TypeTransport && string(f.Data) == "to new" && f.Peer == b.pub {
				return
			}
		}
		if ctx.Err() != nil {
			t.Fatal("packet not delivered to the new connection")
		}
	}
}

func TestMaxConns(t *testing.T) {
	in := startRelayCfg(t, func(c *relay.Config) { c.MaxConns = 1 })
	a := startPeer(t, in.url)
	waitFor(t, "first connected", a.c.Connected)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, in.ws, nil)
	if err == nil {
		t.Fatal("second connection accepted over the limit")
	}
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("got %v", err)
	}
}

// TestSharedHTTP2Listener mounts the relay the way petrel-server does: on
// one listener that also speaks cleartext HTTP/2 for gRPC and REST.
func TestSharedHTTP2Listener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "rel://" + ln.Addr().String()
	srv, err := relay.NewServer(relay.Config{InstanceURL: url, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(relay.Path, srv)
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Proto)) })
	hs := &http.Server{Handler: mux, Protocols: new(http.Protocols)}
	hs.Protocols.SetHTTP1(true)
	hs.Protocols.SetUnencryptedHTTP2(true)
	done := make(chan struct{})
	go func() { defer close(done); hs.Serve(ln) }()
	defer func() { srv.Stop(); hs.Close(); <-done }()

	// The listener really speaks HTTP/2 (prior knowledge) to other clients...
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/other")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "HTTP/2.0" {
		t.Fatalf("other handler served over %q", body)
	}
	// ...while relay clients upgrade over HTTP/1.1 on the same port.
	a, b := startPeer(t, url), startPeer(t, url)
	waitFor(t, "connected", func() bool { return a.c.Connected() && b.c.Connected() })
	expect(t, a, b, "", "over the shared listener")
	a.c.Stop()
	b.c.Stop()
}

// TestTLSRelay serves the relay over TLS with HTTP/2 offered (as a shared
// public listener would) and connects with a rels:// URL.
func TestTLSRelay(t *testing.T) {
	srv, err := relay.NewServer(relay.Config{InstanceURL: "rels://relay.test:443", Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(relay.Path, srv)
	ts := httptest.NewUnstartedServer(mux)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer func() { srv.Stop(); ts.Close() }()

	url := "rels://" + ts.Listener.Addr().String()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	mk := func() (*client.Client, keys.Public) {
		_, pub := newKey(t)
		c := client.New(client.Config{URLs: []string{url}, Key: pub,
			Token: func() string { return token(pub) }, TLSConfig: &tls.Config{RootCAs: pool}})
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		return c, pub
	}
	a, _ := mk()
	b, bPub := mk()
	got := make(chan string, 8)
	b.SetReceiver(func(_ keys.Public, inst string, pkt []byte) {
		select {
		case got <- inst + " " + string(pkt):
		default:
		}
	})
	waitFor(t, "connected over TLS", func() bool { return a.Connected() && b.Connected() })
	if a.HomeURL() != "rels://relay.test:443" {
		t.Fatalf("home %q", a.HomeURL())
	}
	waitFor(t, "delivery over TLS", func() bool {
		a.Send(bPub, "", []byte("secret"))
		select {
		case m := <-got:
			return m == "rels://relay.test:443 secret"
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
}
