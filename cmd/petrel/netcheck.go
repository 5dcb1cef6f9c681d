package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	pstun "github.com/pion/stun/v4"
	"github.com/spf13/cobra"

	"petrel/client/daemon"
	"petrel/client/engine"
	"petrel/client/mapcache"
	"petrel/internal/cmdline"
	"petrel/internal/keys"
)

// netcheckReport is the output of `petrel netcheck --json` (docs/cli.md).
type netcheckReport struct {
	Source        string          `json:"source"` // where the server list came from: flags, map-cache, profile
	UDP           bool            `json:"udp"`    // a STUN server answered over UDP
	PublicAddress string          `json:"public_address,omitempty"`
	NAT           string          `json:"nat"` // none, endpoint-independent, endpoint-dependent, unknown
	STUN          []stunResult    `json:"stun"`
	Management    *reachResult    `json:"management,omitempty"`
	Relays        []reachResult   `json:"relays"`
	localAddr     *net.UDPAddr    // the probing socket's address
	palette       cmdline.Palette // for the human form
}

type stunResult struct {
	Server        string  `json:"server"` // host:port
	MappedAddress string  `json:"mapped_address,omitempty"`
	RttMs         float64 `json:"rtt_ms,omitempty"`
	Error         string  `json:"error,omitempty"`
}

type reachResult struct {
	URL       string  `json:"url"`
	Reachable bool    `json:"reachable"`
	LatencyMs float64 `json:"latency_ms,omitempty"` // management: GET /healthz; relay: TCP (and TLS) connect
	Error     string  `json:"error,omitempty"`
}

func newNetcheckCmd(g *globalFlags) *cobra.Command {
	var (
		mgmtURL string
		stuns   []string
		relays  []string
		timeout time.Duration
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "netcheck",
		Short: "Check this network: UDP, public address, NAT type, relay and management latency",
		Long: `Check what this network allows, without a daemon: whether UDP reaches the
STUN servers, the public address they see, whether the NAT maps one socket to
one public address for every destination (endpoint-independent: direct paths
work) or to a new one per destination (endpoint-dependent, "symmetric":
expect relays), the time to connect to each relay, and whether management
answers. The servers come from the flags, else from the agent's cached
network map (readable by the agent's user), else from the saved management
URL with the server's default STUN ports 3478 and 3479.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validatePositive("--timeout", timeout); err != nil {
				return err
			}
			u, err := validateURL("--management-url", mgmtURL)
			if err != nil {
				return err
			}
			r := &netcheckReport{Source: "flags", Relays: []reachResult{}, STUN: []stunResult{}}
			if u == "" && len(stuns) == 0 && len(relays) == 0 {
				if u, stuns, relays, r.Source, err = netcheckServers(g.stateDir); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 4*timeout+5*time.Second)
			defer cancel()
			r.run(ctx, u, stuns, relays, timeout)
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			r.palette = cmdline.NewPalette(cmd.OutOrStdout())
			r.print(cmd.OutOrStdout())
			return nil
		},
	}
	cmd.Flags().StringVar(&mgmtURL, "management-url", "", "management server to check (default: the saved profile's)")
	cmd.Flags().StringSliceVar(&stuns, "stun", nil, "STUN server HOST:PORT or stun:HOST:PORT to ask (repeatable)")
	cmd.Flags().StringSliceVar(&relays, "relay", nil, "relay URL rel://HOST:PORT or rels://HOST:PORT to time (repeatable)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Second, "how long to wait for each answer")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// netcheckServers finds the servers to check in the state dir: the
// cached map's server config when this user can read the agent's key,
// else the profile's management URL and the default STUN ports.
func netcheckServers(stateDir string) (mgmt string, stuns, relays []string, source string, err error) {
	prof, err := daemon.StateDir{Path: stateDir}.LoadProfile()
	if err != nil {
		return "", nil, nil, "", err
	}
	if prof.ManagementURL == "" {
		return "", nil, nil, "", errors.New("no management server known: run petrel up (or login) first, or give --management-url")
	}
	if key, kerr := keys.ReadPrivate(filepath.Join(stateDir, daemon.KeyFile)); kerr == nil {
		snap, cerr := mapcache.Load(filepath.Join(stateDir, engine.CacheFile), key, prof.ManagementURL)
		if cerr == nil && snap.ServerConfig != nil {
			sc := snap.ServerConfig
			return prof.ManagementURL, sc.StunUrls, sc.GetRelay().GetUrls(), "map-cache", nil
		}
	}
	host := prof.ManagementURL
	if pu, perr := url.Parse(prof.ManagementURL); perr == nil {
		host = pu.Hostname()
	}
	return prof.ManagementURL, []string{net.JoinHostPort(host, "3478"), net.JoinHostPort(host, "3479")}, nil, "profile", nil
}

func (r *netcheckReport) run(ctx context.Context, mgmt string, stuns, relays []string, timeout time.Duration) {
	r.probeSTUN(ctx, stuns, timeout)
	if mgmt != "" {
		m := probeManagement(ctx, mgmt, timeout)
		r.Management = &m
	}
	for _, u := range relays {
		r.Relays = append(r.Relays, probeRelay(ctx, u, timeout))
	}
}

// probeSTUN asks every STUN server from one UDP socket (as the agent's
// shared WireGuard/ICE socket does) and classifies the NAT.
func (r *netcheckReport) probeSTUN(ctx context.Context, servers []string, timeout time.Duration) {
	r.NAT = "unknown"
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		r.STUN = append(r.STUN, stunResult{Error: "open a UDP socket: " + err.Error()})
		return
	}
	defer conn.Close()
	r.localAddr = conn.LocalAddr().(*net.UDPAddr)
	for _, s := range servers {
		r.STUN = append(r.STUN, stunBinding(ctx, conn, strings.TrimPrefix(s, "stun:"), timeout))
	}
	var mapped []string
	for _, s := range r.STUN {
		if s.MappedAddress != "" {
			mapped = append(mapped, s.MappedAddress)
		}
	}
	r.UDP = len(mapped) > 0
	if r.UDP {
		r.PublicAddress = mapped[0]
	}
	r.NAT = classifyNAT(mapped, r.localAddr.Port, localIPs())
}

// classifyNAT: "none" when the server saw our own address, else
// endpoint-independent when every server saw one public address and
// endpoint-dependent when they saw different ones; "unknown" with fewer
// than two answers.
func classifyNAT(mapped []string, localPort int, local map[string]bool) string {
	if len(mapped) == 0 {
		return "unknown"
	}
	host, port, _ := net.SplitHostPort(mapped[0])
	if local[host] && port == fmt.Sprint(localPort) {
		return "none"
	}
	if len(mapped) < 2 {
		return "unknown"
	}
	for _, m := range mapped[1:] {
		if m != mapped[0] {
			return "endpoint-dependent"
		}
	}
	return "endpoint-independent"
}

func localIPs() map[string]bool {
	out := map[string]bool{}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out[n.IP.String()] = true
		}
	}
	return out
}

// stunBinding sends binding requests to server (three tries) and returns
// the address it saw and the round-trip time.
func stunBinding(ctx context.Context, conn *net.UDPConn, server string, timeout time.Duration) stunResult {
	res := stunResult{Server: server}
	ua, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", hostOf(server))
	if err != nil || len(ua) == 0 {
		res.Error = fmt.Sprintf("resolve %s: %v", server, err)
		return res
	}
	_, port, _ := net.SplitHostPort(server)
	to, err := net.ResolveUDPAddr("udp4", net.JoinHostPort(ua[0].String(), port))
	if err != nil {
		res.Error = err.Error()
		return res
	}
	buf := make([]byte, 1500)
	for try := 0; try < 3 && ctx.Err() == nil; try++ {
		req := pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest)
		start := time.Now()
		if _, err := conn.WriteToUDP(req.Raw, to); err != nil {
			res.Error = err.Error()
			return res
		}
		_ = conn.SetReadDeadline(start.Add(timeout))
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				res.Error = "no answer within " + timeout.String()
				break
			}
			m := &pstun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if !from.IP.Equal(to.IP) || from.Port != to.Port || m.Decode() != nil || m.TransactionID != req.TransactionID {
				continue // a late answer to an earlier try, or noise
			}
			var xa pstun.XORMappedAddress
			if err := xa.GetFrom(m); err != nil {
				res.Error = "answer without a mapped address"
				return res
			}
			res.MappedAddress, res.RttMs, res.Error = xa.String(), ms(time.Since(start)), ""
			return res
		}
	}
	return res
}

func hostOf(hostport string) string {
	h, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return h
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// probeManagement times GET /healthz on the management server.
func probeManagement(ctx context.Context, u string, timeout time.Duration) reachResult {
	res := reachResult{URL: u}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u, "/")+"/healthz", nil)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		msg := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			msg = ue.Err.Error()
		}
		res.Error = "cannot reach the management server: " + msg
		return res
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	res.LatencyMs, res.Reachable = ms(time.Since(start)), true
	if resp.StatusCode != http.StatusOK {
		res.Error = "answered " + resp.Status
	}
	return res
}

// probeRelay times a TCP connect (and the TLS handshake for rels://) to
// a relay URL.
func probeRelay(ctx context.Context, raw string, timeout time.Duration) reachResult {
	res := reachResult{URL: raw}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "rel" && u.Scheme != "rels") || u.Hostname() == "" {
		res.Error = "not a relay URL (want rel://HOST:PORT or rels://HOST:PORT)"
		return res
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"rel": "80", "rels": "443"}[u.Scheme]
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err == nil && u.Scheme == "rels" {
		tc := tls.Client(c, &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12})
		err = tc.HandshakeContext(ctx)
		c = tc
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	c.Close()
	res.LatencyMs, res.Reachable = ms(time.Since(start)), true
	return res
}

func (r *netcheckReport) print(w io.Writer) {
	p := r.palette
	yes := func(ok bool, s string) string {
		if ok {
			return p.Green(s)
		}
		return p.Red(s)
	}
	fmt.Fprintf(w, "Servers from: %s\n", r.Source)
	fmt.Fprintf(w, "UDP:          %s\n", yes(r.UDP, map[bool]string{true: "yes", false: "no (direct paths are unlikely; the relay will carry traffic)"}[r.UDP]))
	if r.PublicAddress != "" {
		fmt.Fprintf(w, "Public addr:  %s\n", r.PublicAddress)
	}
	nat := map[string]string{
		"none":                 p.Green("none (this host has a public address)"),
		"endpoint-independent": p.Green("endpoint-independent mapping (one public address for every server: direct paths work)"),
		"endpoint-dependent":   p.Yellow("endpoint-dependent mapping (a new public address per destination, \"symmetric\": expect relayed peers)"),
		"unknown":              "unknown (fewer than two STUN servers answered)",
	}[r.NAT]
	fmt.Fprintf(w, "NAT:          %s\n", nat)
	for _, s := range r.STUN {
		if s.Error != "" {
			fmt.Fprintf(w, "  STUN %s: %s\n", s.Server, p.Red(s.Error))
		} else {
			fmt.Fprintf(w, "  STUN %s: %s in %.1f ms\n", s.Server, s.MappedAddress, s.RttMs)
		}
	}
	if m := r.Management; m != nil {
		fmt.Fprintf(w, "Management:   %s %s\n", m.URL, reachText(p, *m))
	}
	if len(r.Relays) == 0 {
		fmt.Fprintln(w, "Relays:       none known")
	}
	for i, rl := range r.Relays {
		label := "Relays:      "
		if i > 0 {
			label = "             "
		}
		fmt.Fprintf(w, "%s %s %s\n", label, rl.URL, reachText(p, rl))
	}
}

func reachText(p cmdline.Palette, r reachResult) string {
	switch {
	case !r.Reachable:
		return p.Red("unreachable: " + r.Error)
	case r.Error != "":
		return p.Yellow(fmt.Sprintf("%.1f ms, %s", r.LatencyMs, r.Error))
	}
	return fmt.Sprintf("%.1f ms", r.LatencyMs)
}
