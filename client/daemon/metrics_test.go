package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"petrel/client/daemon"
	"petrel/internal/metrics/metricstest"
	"petrel/management"
	"petrel/proto/daemonpb"
	"petrel/server"
)

// value reads one series, failing the test when it is absent.
func value(t *testing.T, f metricstest.Families, name string, labels ...string) float64 {
	t.Helper()
	v, ok := f.Value(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}

func statusCode(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// A real server and two netstack agents (forced onto the relay), each
// serving /metrics on its own loopback listener: the scrapes have the
// documented series and labels, and the counters move with what the agents
// do (registrations, Sync, signal, relay, WireGuard bytes per peer, DNS).
func TestMetricsServerAndAgents(t *testing.T) {
	srv, err := server.New(server.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", STUNListen: "127.0.0.1:0",
		MetricsListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
	srvURL := "http://" + srv.MetricsAddr().String() + "/metrics"
	before := metricstest.Scrape(t, srvURL)
	if _, ok := before.Value("petrel_management_logins_total", "op", "register", "result", "ok"); ok {
		t.Fatal("a registration counted before any agent")
	}
	if v := value(t, before, "petrel_management_sync_streams"); v != 0 {
		t.Fatalf("sync streams before any agent: %v", v)
	}

	var agents []*daemon.Daemon
	var clients []daemonpb.DaemonClient
	for i, name := range []string{"alpha", "bravo"} {
		d := daemon.New(daemon.Options{StateDir: shortDir(t), Netstack: true, SOCKS5Addr: "127.0.0.1:0", ForceRelay: true,
			MetricsListen: "127.0.0.1:0", Pprof: i == 0, Logger: slog.New(slog.DiscardHandler)})
		if err := d.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer d.Stop()
		if i == 0 {
			f := metricstest.Scrape(t, "http://"+d.MetricsAddr().String()+"/metrics")
			if value(t, f, "petrel_agent_engine_up") != 0 || f["petrel_agent_peers"] != nil {
				t.Fatal("an agent that is down reports an engine or peers")
			}
		}
		cl := dialDaemonSocket(t, d.Socket())
		if err := up(cl, &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), SetupKey: setupKey, Hostname: name, TimeoutMs: 20000}); err != nil {
			t.Fatal(err)
		}
		agents, clients = append(agents, d), append(clients, cl)
	}
	var st *daemonpb.StatusResponse
	for i, cl := range clients {
		s := waitStatus(t, cl, "relayed peer", 60*time.Second, func(st *daemonpb.StatusResponse) bool { return peerVia(st, "relay") })
		if i == 0 {
			st = s
		}
	}
	if err := ping(t, clients[0], "bravo"); err != nil {
		t.Fatal(err)
	}

	// The server.
	after := metricstest.Scrape(t, srvURL)
	for _, c := range []struct {
		name   string
		labels []string
		want   func(float64) bool
		what   string
	}{
		{"petrel_management_logins_total", []string{"op", "register", "result", "ok"}, eq(2), "2 registrations"},
		{"petrel_management_login_duration_seconds", []string{"op", "register"}, ge(2), ">= 2 timed"},
		{"petrel_management_sync_streams", nil, eq(2), "2 streams"},
		{"petrel_management_peers", nil, eq(2), "2 peers"},
		{"petrel_management_sync_message_bytes", []string{"kind", "full"}, ge(2), ">= 2 full maps"},
		{"petrel_management_sync_message_bytes", []string{"kind", "delta"}, ge(1), ">= 1 delta (bravo joined)"},
		{"petrel_store_update_duration_seconds", []string{"result", "ok"}, ge(2), ">= 2 transactions"},
		{"petrel_signal_sessions", nil, eq(2), "2 sessions"},
		{"petrel_signal_messages_total", []string{"result", "routed"}, ge(1), "offers routed"},
		{"petrel_relay_connections", nil, ge(2), ">= 2 connections"},
		{"petrel_relay_frames_total", []string{"result", "forwarded"}, ge(1), "frames forwarded"},
		{"petrel_relay_forwarded_bytes_total", nil, ge(1), "bytes forwarded"},
		{"go_goroutines", nil, ge(1), "runtime"},
	} {
		if v := value(t, after, c.name, c.labels...); !c.want(v) {
			t.Errorf("server %s%v = %v, want %s", c.name, c.labels, v, c.what)
		}
	}

	// An agent: alpha's view of bravo.
	agentURL := "http://" + agents[0].MetricsAddr().String() + "/metrics"
	bravo := st.Peers[0]
	bravoKey := bravo.PublicKey[:8]
	a := metricstest.Scrape(t, agentURL)
	for _, c := range []struct {
		name   string
		labels []string
		want   func(float64) bool
	}{
		{"petrel_agent_engine_up", nil, eq(1)},
		{"petrel_agent_connected", []string{"link", "management"}, eq(1)},
		{"petrel_agent_connected", []string{"link", "signal"}, eq(1)},
		{"petrel_agent_connected", []string{"link", "relay"}, eq(1)},
		{"petrel_agent_peers", []string{"path", "relay", "status", "connected"}, eq(1)},
		{"petrel_agent_peers", []string{"path", "p2p", "status", "connected"}, eq(0)},
		{"petrel_agent_peer_tx_bytes_total", []string{"peer", "bravo", "key", bravoKey}, ge(1)},
		{"petrel_agent_peer_rx_bytes_total", []string{"peer", "bravo", "key", bravoKey}, ge(1)},
		{"petrel_agent_peer_handshake_age_seconds", []string{"peer", "bravo", "key", bravoKey}, ge(0)},
		{"petrel_agent_firewall_packets_total", []string{"peer", "bravo", "direction", "out", "verdict", "allowed"}, ge(1)},
		{"petrel_agent_firewall_packets_total", []string{"peer", "bravo", "direction", "in", "verdict", "allowed"}, ge(1)},
		{"petrel_agent_relay_reconnects_total", nil, eq(0)},
		{"petrel_agent_dns_cache_lookups_total", []string{"result", "miss"}, ge(0)},
	} {
		if v := value(t, a, c.name, c.labels...); !c.want(v) {
			t.Errorf("agent %s%v = %v", c.name, c.labels, v)
		}
	}
	if n := len(a.Series("petrel_agent_peer_tx_bytes_total")); n != 1 {
		t.Errorf("%d tx series, want 1 (bravo)", n)
	}

	// Counters move: bytes to bravo after another ping, DNS queries after
	// a lookup of bravo's name on alpha's resolver.
	tx := value(t, a, "petrel_agent_peer_tx_bytes_total", "peer", "bravo")
	dnsQ, _ := a.Value("petrel_agent_dns_queries_total", "handler", "local-zone", "rcode", "NOERROR")
	if err := ping(t, clients[0], "bravo"); err != nil {
		t.Fatal(err)
	}
	if len(st.GetDns().GetListeners()) == 0 {
		t.Fatal("alpha's resolver has no listener")
	}
	q := new(mdns.Msg)
	q.SetQuestion(mdns.Fqdn(bravo.Fqdn), mdns.TypeA)
	if r, _, err := (&mdns.Client{Timeout: 3 * time.Second}).Exchange(q, st.Dns.Listeners[0]); err != nil || len(r.Answer) != 1 {
		t.Fatalf("resolve %s on alpha: %v %v", bravo.Fqdn, r, err)
	}
	a2 := metricstest.Scrape(t, agentURL)
	if v := value(t, a2, "petrel_agent_peer_tx_bytes_total", "peer", "bravo"); v <= tx {
		t.Errorf("tx bytes to bravo %v -> %v after a ping", tx, v)
	}
	if v := value(t, a2, "petrel_agent_dns_queries_total", "handler", "local-zone", "rcode", "NOERROR"); v != dnsQ+1 {
		t.Errorf("local-zone answers %v -> %v after one query", dnsQ, v)
	}

	// The profiler only where asked for.
	if c := statusCode(t, "http://"+agents[0].MetricsAddr().String()+"/debug/pprof/"); c != 200 {
		t.Errorf("alpha (--pprof) /debug/pprof/ = %d", c)
	}
	if c := statusCode(t, "http://"+agents[1].MetricsAddr().String()+"/debug/pprof/"); c != 404 {
		t.Errorf("bravo (no --pprof) /debug/pprof/ = %d", c)
	}

	// Down: the engine's series go, the registry stays.
	if _, err := clients[0].Down(context.Background(), &daemonpb.DownRequest{}); err != nil {
		t.Fatal(err)
	}
	a3 := metricstest.Scrape(t, agentURL)
	if value(t, a3, "petrel_agent_engine_up") != 0 || a3["petrel_agent_peer_tx_bytes_total"] != nil {
		t.Error("a downed agent still reports its engine")
	}
	for name := range a3 {
		if strings.HasPrefix(name, "petrel_") && !strings.HasPrefix(name, "petrel_agent_") {
			t.Errorf("agent exports a server series %s", name)
		}
	}
}

// A control plane that restarts costs the agent one reconnect to its home
// relay and one to signal; the gauges follow the links down and up.
func TestMetricsAgentReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	data := t.TempDir()
	srv := startServerAt(t, data, listen)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, key, err := srv.Management().CreateSetupKey(ctx, srv.Management().Accounts()[0],
		management.SetupKeyInput{Name: "t", Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	d := daemon.New(daemon.Options{StateDir: shortDir(t), Netstack: true, SOCKS5Addr: "127.0.0.1:0",
		MetricsListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	if err := up(dialDaemonSocket(t, d.Socket()), &daemonpb.UpRequest{ManagementUrl: srv.PublicURL(), SetupKey: key,
		Hostname: "phoenix", TimeoutMs: 20000}); err != nil {
		t.Fatal(err)
	}
	url := "http://" + d.MetricsAddr().String() + "/metrics"
	waitMetrics := func(what string, ok func(metricstest.Families) bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for f := metricstest.Scrape(t, url); !ok(f); f = metricstest.Scrape(t, url) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached; last scrape %v", what, f["petrel_agent_connected"])
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	links := func(want float64) func(metricstest.Families) bool {
		return func(f metricstest.Families) bool {
			s, _ := f.Value("petrel_agent_connected", "link", "signal")
			r, _ := f.Value("petrel_agent_connected", "link", "relay")
			return s == want && r == want
		}
	}
	waitMetrics("signal and relay up", links(1))
	f := metricstest.Scrape(t, url)
	if value(t, f, "petrel_agent_relay_reconnects_total") != 0 || value(t, f, "petrel_agent_signal_reconnects_total") != 0 {
		t.Fatal("reconnects counted before any")
	}
	srv.Stop()
	waitMetrics("signal and relay down", links(0))
	srv = startServerAt(t, data, listen)
	defer srv.Stop()
	waitMetrics("signal and relay back", links(1))
	f = metricstest.Scrape(t, url)
	if r, s := value(t, f, "petrel_agent_relay_reconnects_total"), value(t, f, "petrel_agent_signal_reconnects_total"); r != 1 || s != 1 {
		t.Fatalf("reconnects: relay %v, signal %v; want 1 each", r, s)
	}
}

// An agent whose metrics port is taken does not start; bad options are
// refused with the flag's name.
func TestMetricsAgentStartErrors(t *testing.T) {
	d := daemon.New(daemon.Options{StateDir: shortDir(t), Netstack: true, MetricsListen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	for _, tc := range []struct {
		opts daemon.Options
		want string
	}{
		{daemon.Options{MetricsListen: d.MetricsAddr().String()}, "metrics listen on"},
		{daemon.Options{MetricsListen: "nope"}, `--metrics-listen "nope"`},
		{daemon.Options{Pprof: true}, "--pprof needs --metrics-listen"},
	} {
		tc.opts.StateDir, tc.opts.Netstack, tc.opts.Logger = shortDir(t), true, slog.New(slog.DiscardHandler)
		d2 := daemon.New(tc.opts)
		err := d2.Start(context.Background())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("start with %+v: %v, want %q", tc.opts, err, tc.want)
		}
		if err == nil {
			d2.Stop()
		} else if dialErr := dialable(d2.Socket()); dialErr == nil {
			t.Errorf("start with %+v failed but left its socket serving", tc.opts)
		}
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func ge(min float64) func(float64) bool  { return func(v float64) bool { return v >= min } }

// dialable reports nil when something accepts connections on the socket.
func dialable(sock string) error {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}
