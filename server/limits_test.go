package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// shortLimits keeps every timeout at a fraction of a second.
var shortLimits = limits{
	readHeader: time.Second, body: 300 * time.Millisecond, write: time.Second, httpIdle: time.Second,
	grpcIdle: 300 * time.Millisecond, pingTime: 300 * time.Millisecond, pingTimeout: 300 * time.Millisecond,
}

// h2Client opens a raw prior-knowledge HTTP/2 connection (what a gRPC
// client opens) and completes the handshake, then opens no stream.
func h2Client(t testing.TB, addr string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// closedWithin reads (answering nothing) until the server closes c, and
// fails if that takes longer than d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", d)
	}
}

// An HTTP/2 connection that completes the handshake and then opens no
// stream is closed: GOAWAY after grpcIdle when it answers pings, closed
// after pingTime+pingTimeout when it answers nothing.
func TestIdleHTTP2ConnectionClosed(t *testing.T) {
	t.Run("answers pings", func(t *testing.T) {
		cfg := loopbackConfig(t, t.TempDir())
		cfg.limits = limits{grpcIdle: 300 * time.Millisecond} // pings at the default minute
		srv := start(t, cfg)
		c, fr := h2Client(t, srv.Addr().String())
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		goAway := false
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("idle connection still open after 10 s")
				}
				break // closed by the server
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = fr.WriteSettingsAck()
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					_ = fr.WritePing(true, f.Data)
				}
			case *http2.GoAwayFrame:
				goAway = true
			}
		}
		if !goAway {
			t.Error("closed without GOAWAY")
		}
	})
	t.Run("silent", func(t *testing.T) {
		cfg := loopbackConfig(t, t.TempDir())
		cfg.limits = limits{pingTime: 300 * time.Millisecond, pingTimeout: 300 * time.Millisecond}
		srv := start(t, cfg)
		c, _ := h2Client(t, srv.Addr().String())
		closedWithin(t, c, 10*time.Second)
	})
}

// A REST request whose body is dripped a byte at a time is cut after the
// body timeout instead of holding its connection.
func TestDrippedBodyCut(t *testing.T) {
	cfg := loopbackConfig(t, t.TempDir())
	cfg.limits = shortLimits
	srv := start(t, cfg)
	token := readToken(t, srv)
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/groups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", token)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	closedWithin(t, c, 10*time.Second)
}

// The relay WebSocket is exempt from the REST body and write deadlines
// (the relay owns the hijacked connection for the whole session); REST
// and everything else get both.
func TestRequestDeadlinesSpareRelay(t *testing.T) {
	for _, tc := range []struct {
		path                  string
		readSet, writeCleared bool
	}{
		{"/relay", false, true},
		{"/api/peers", true, false},
		{"/healthz", true, false},
	} {
		rec := &deadlineRecorder{ResponseWriter: nopWriter{}}
		requestDeadlines(http.NotFoundHandler(), shortLimits).ServeHTTP(rec, httpReq(t, tc.path))
		if rec.read != tc.readSet || rec.writeZero != tc.writeCleared {
			t.Errorf("%s: read deadline set %v, write deadline cleared %v", tc.path, rec.read, rec.writeZero)
		}
	}
}

func httpReq(t *testing.T, path string) *http.Request {
	r, err := http.NewRequest("GET", "http://x"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}

// deadlineRecorder notes the deadlines http.ResponseController sets.
type deadlineRecorder struct {
	http.ResponseWriter
	read, writeZero bool
}

func (d *deadlineRecorder) SetReadDeadline(t time.Time) error { d.read = !t.IsZero(); return nil }
func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.writeZero = t.IsZero()
	return nil
}

// The connection over MaxConnsPerSource from one IP is closed on accept;
// another IP is still served.
func TestMaxConnsPerSource(t *testing.T) {
	cfg := loopbackConfig(t, t.TempDir())
	cfg.MaxConnsPerSource = 3
	srv := start(t, cfg)
	dial := func(src string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for range 3 {
		dial("127.0.0.1") // held open, saying nothing
	}
	over := dial("127.0.0.1")
	closedWithin(t, over, 5*time.Second)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: deadline}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + srv.Addr().String() + "/healthz")
	if err != nil {
		t.Fatalf("another source refused: %v", err)
	}
	resp.Body.Close()
}

const fdChildEnv = "PETREL_TEST_FD_CHILD"

// fdLimit is the descriptor limit of the server under test: the issue's
// reproduction (prlimit --nofile=200, 220 idle HTTP/2 connections).
const fdLimit, floodConns = 200, 220

// The reproduction: a server limited to 200 descriptors receives
// 220 idle HTTP/2 connections. It must log EMFILE and keep running, keep
// serving a connection it had already accepted, and serve new requests
// once the idle connections are shed. The server runs in a child process
// (this test re-executed) so that only it has the low limit.
func TestDescriptorExhaustion(t *testing.T) {
	if os.Getenv(fdChildEnv) != "" {
		fdChild(t)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child server")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDescriptorExhaustion$")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(stdout)
	line, lineErr := br.ReadString('\n')
	exited := make(chan error, 1)
	go func() {
		_, _ = io.Copy(stderr, br) // the rest of the child's output
		exited <- cmd.Wait()
	}()
	defer func() {
		stdin.Close()
		select {
		case err := <-exited:
			if err != nil && !t.Failed() {
				t.Errorf("child: %v\n%s", err, stderr.String())
			}
		case <-time.After(deadline):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("child did not stop")
		}
	}()
	if lineErr != nil || !strings.HasPrefix(line, "addr ") {
		t.Fatalf("child: %q %v\n%s", line, lineErr, stderr.String())
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "addr "))
	base := "http://" + addr

	// An established keep-alive connection, opened before the flood.
	var reused bool
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: deadline}
	healthz := func() error {
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/healthz", nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "ok\n" {
			return fmt.Errorf("healthz: %d %q", resp.StatusCode, b)
		}
		return nil
	}
	if err := healthz(); err != nil {
		t.Fatal(err)
	}

	for range floodConns {
		h2Client(t, addr)
	}
	waitFor(t, "EMFILE in the child's log", func() bool {
		return strings.Contains(stderr.String(), "too many open files")
	})
	// The server is out of descriptors: the established connection is
	// still served.
	if err := healthz(); err != nil || !reused {
		t.Fatalf("established connection during the flood: %v (reused %v)\n%s", err, reused, stderr.String())
	}
	// A new connection is served once the idle ones are shed.
	tr.CloseIdleConnections()
	if err := healthz(); err != nil || reused {
		t.Fatalf("new connection after the flood: %v (reused %v)\n%s", err, reused, stderr.String())
	}
	select {
	case err := <-exited:
		exited <- err
		t.Fatalf("child exited during the flood: %v\n%s", err, stderr.String())
	default:
	}
}

// fdChild is the server side of TestDescriptorExhaustion: it lowers its
// descriptor limit, serves with short idle timeouts and no per-source cap
// (all the flood comes from 127.0.0.1 and must reach EMFILE), prints its
// address and serves until stdin closes; it exits 3 if the server stops by
// itself.
func fdChild(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = fdLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	cfg := loopbackConfig(t, t.TempDir())
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.MaxConnsPerSource = -1
	cfg.limits = limits{grpcIdle: time.Second, pingTime: time.Second, pingTimeout: time.Second}
	srv := start(t, cfg)
	fmt.Printf("addr %s\n", srv.Addr())
	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	select {
	case <-stdinClosed:
	case <-srv.Done():
		fmt.Fprintf(os.Stderr, "server stopped serving: %v\n", srv.Err())
		os.Exit(3)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
