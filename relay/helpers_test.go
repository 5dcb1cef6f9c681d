package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"petrel/internal/keys"
	"petrel/relay"
	"petrel/relay/auth"
	"petrel/relay/client"
	"petrel/relay/frame"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = bytes.Repeat([]byte{0x42}, auth.SecretLen)

type instance struct {
	srv *relay.Server
	url string
	ws  string // ws:// URL for raw dials
}

// startRelay starts a standalone relay on a loopback port (addr "" = any).
func startRelay(t *testing.T, addr string, wrap func(http.Handler) http.Handler) *instance {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	url := "rel://" + ln.Addr().String()
	srv, err := relay.NewServer(relay.Config{InstanceURL: url, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if wrap == nil {
		if err := srv.StartOn(ln); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle(relay.Path, wrap(srv))
		hs := &http.Server{Handler: mux}
		done := make(chan struct{})
		go func() { defer close(done); hs.Serve(ln) }()
		t.Cleanup(func() { hs.Close(); <-done })
	}
	t.Cleanup(srv.Stop)
	return &instance{srv: srv, url: url, ws: "ws://" + ln.Addr().String() + relay.Path}
}

type peer struct {
	priv keys.Private
	pub  keys.Public
	c    *client.Client
	got  chan packet
	down chan keys.Public

	mu       sync.Mutex
	connects int
}

type packet struct {
	src      keys.Public
	instance string
	data     string
}

func newKey(t testing.TB) (keys.Private, keys.Public) {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k, k.Public()
}

func token(pub keys.Public) string { return auth.Mint(testSecret, pub, time.Now().Add(time.Hour)) }

func startPeer(t *testing.T, urls ...string) *peer {
	t.Helper()
	p := &peer{got: make(chan packet, 64), down: make(chan keys.Public, 64)}
	p.priv, p.pub = newKey(t)
	p.c = client.New(client.Config{URLs: urls, Key: p.pub, Token: func() string { return token(p.pub) }})
	p.c.SetReceiver(func(src keys.Public, inst string, pkt []byte) {
		select {
		case p.got <- packet{src, inst, string(pkt)}:
		default:
		}
	})
	p.c.OnUnreachable(func(k keys.Public, _ string) {
		select {
		case p.down <- k:
		default:
		}
	})
	p.c.OnStateChange(func(up bool, _ string) {
		if up {
			p.mu.Lock()
			p.connects++
			p.mu.Unlock()
		}
	})
	if err := p.c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.c.Stop)
	return p
}

func (p *peer) connectCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connects
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expect sends until a packet arrives (the destination's registration or a
// foreign connection may still be in flight) and returns it.
func expect(t *testing.T, from *peer, to *peer, instanceURL, msg string) packet {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		from.c.Send(to.pub, instanceURL, []byte(msg))
		select {
		case pk := <-to.got:
			if pk.data == msg {
				return pk
			}
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("packet %q never arrived", msg)
		}
	}
}

// rawConn is a hand-driven websocket for protocol abuse tests.
func rawDial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(frame.MaxFrame + 1)
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

func rawAuth(t *testing.T, ws *websocket.Conn, pub keys.Public, tok string) (frame.Frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageBinary, frame.AppendAuth(nil, pub, tok)); err != nil {
		return frame.Frame{}, err
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		return frame.Frame{}, err
	}
	f, err := frame.Decode(b)
	if err != nil {
		return f, fmt.Errorf("decode reply: %w", err)
	}
	return f, nil
}

// readUntilClosed reads until the connection ends and returns the close status.
func readUntilClosed(t *testing.T, ws *websocket.Conn) websocket.StatusCode {
	t.Helper()
	// The relay closes a connection at the bad frame itself; 10 s is only
	// slack for a loaded machine, so a missing check fails fast.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("connection not closed by the relay within 10 s: the frame that should close it was accepted")
			}
			return websocket.CloseStatus(err)
		}
	}
}
