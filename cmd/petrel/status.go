package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"petrel/internal/printable"
	"petrel/proto/daemonpb"
)

// statusJSON is the stable JSON contract of `petrel status --json`
// (docs/cli.md, JSON outputs). Extend it; never rename or remove fields.
type statusJSON struct {
	State      string `json:"state"`
	Management struct {
		URL       string `json:"url"`
		Connected bool   `json:"connected"`
		// MapAge: seconds since the network map was last known current
		// (0 while connected); FromCache: started from the on-disk cache
		// and not connected since.
		MapAge    int64 `json:"map_age"`
		FromCache bool  `json:"from_cache"`
	} `json:"management"`
	Signal struct {
		Connected bool `json:"connected"`
	} `json:"signal"`
	Relay struct {
		HomeURL   string `json:"home_url"`
		Connected bool   `json:"connected"`
	} `json:"relay"`
	IP        string           `json:"ip"`
	FQDN      string           `json:"fqdn"`
	PublicKey string           `json:"public_key"`
	Peers     []peerStatusJSON `json:"peers"`
	LastError string           `json:"last_error,omitempty"`
	Routes    []routeJSON      `json:"routes"`
	ExitNode  *exitNodeJSON    `json:"exit_node"`
	DNS       *dnsJSON         `json:"dns"`
	SOCKS5    string           `json:"socks5,omitempty"` // netstack mode: the proxy's address
	// Unsupported: features the agent needs that this platform lacks
	// (docs/platforms.md); [] when none.
	Unsupported []unsupportedJSON `json:"unsupported"`
}

type unsupportedJSON struct {
	Feature string `json:"feature"` // routes, exit-node, routing-peer, dns-host
	Message string `json:"message"`
}

type peerStatusJSON struct {
	Name            string  `json:"name"`
	FQDN            string  `json:"fqdn"`
	IP              string  `json:"ip"`
	PublicKey       string  `json:"public_key"`
	Status          string  `json:"status"`
	Path            string  `json:"path"`
	RelayURL        string  `json:"relay_url"`
	RelayReason     string  `json:"relay_reason,omitempty"`
	LocalCandidate  string  `json:"local_candidate"`
	RemoteCandidate string  `json:"remote_candidate"`
	LatencyMs       float64 `json:"latency_ms"`
	// LatencyAgeS: seconds since latency_ms was measured (through the
	// tunnel, on the current path); latency_ms is 0 when none is recent.
	LatencyAgeS int64 `json:"latency_age_s"`
	// OfflineReason: why status is "offline" (not-on-signal, no-reply,
	// silent, handshake-expired; docs/diagnostics.md).
	OfflineReason string `json:"offline_reason,omitempty"`
	LastHandshake string `json:"last_handshake"` // RFC 3339, "" = never
	RxBytes       uint64 `json:"rx_bytes"`
	TxBytes       uint64 `json:"tx_bytes"`
	// Firewall: packets the access policy let through or dropped, and
	// packets dropped because their inner source was not the peer's.
	Firewall *firewallJSON `json:"firewall,omitempty"`
}

type firewallJSON struct {
	InAllowed  uint64 `json:"in_allowed"`
	InDropped  uint64 `json:"in_dropped"`
	OutAllowed uint64 `json:"out_allowed"`
	OutDropped uint64 `json:"out_dropped"`
	Spoofed    uint64 `json:"spoofed"`
}

func toJSON(st *daemonpb.StatusResponse) statusJSON {
	var j statusJSON
	j.State = st.State
	j.Management.URL, j.Management.Connected = st.ManagementUrl, st.ManagementConnected
	j.Management.MapAge, j.Management.FromCache = st.MapAgeSeconds, st.MapFromCache
	j.Signal.Connected = st.SignalConnected
	j.Relay.HomeURL, j.Relay.Connected = st.RelayHomeUrl, st.RelayConnected
	j.IP, j.FQDN, j.PublicKey, j.LastError, j.SOCKS5 = st.Ip, st.Fqdn, st.PublicKey, st.LastError, st.Socks5Addr
	j.Routes, j.ExitNode, j.DNS = routesJSON(st.Routes), exitJSON(st.ExitNode), toDNSJSON(st.Dns)
	j.Unsupported = make([]unsupportedJSON, 0, len(st.Unsupported))
	for _, u := range st.Unsupported {
		j.Unsupported = append(j.Unsupported, unsupportedJSON{Feature: u.Feature, Message: u.Message})
	}
	j.Peers = make([]peerStatusJSON, 0, len(st.Peers))
	for _, p := range st.Peers {
		hs := ""
		if p.LastHandshakeUnix > 0 {
			hs = time.Unix(p.LastHandshakeUnix, 0).UTC().Format(time.RFC3339)
		}
		j.Peers = append(j.Peers, peerStatusJSON{Name: p.Name, FQDN: p.Fqdn, IP: p.Ip, PublicKey: p.PublicKey,
			Status: p.Status, Path: p.Path, RelayURL: p.RelayUrl, RelayReason: p.RelayReason,
			LocalCandidate: p.LocalCandidate, RemoteCandidate: p.RemoteCandidate, LatencyMs: p.LatencyMs,
			LatencyAgeS: p.LatencyAgeS, OfflineReason: p.OfflineReason,
			LastHandshake: hs, RxBytes: p.RxBytes, TxBytes: p.TxBytes, Firewall: toFirewallJSON(p.Firewall)})
	}
	return j
}

func toFirewallJSON(c *daemonpb.FirewallCounters) *firewallJSON {
	if c == nil {
		return nil
	}
	return &firewallJSON{InAllowed: c.InAllowed, InDropped: c.InDropped, OutAllowed: c.OutAllowed,
		OutDropped: c.OutDropped, Spoofed: c.Spoofed}
}

func newStatusCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the connection state and peers",
		Long: "Show the connection state and peers (--json: the stable contract of docs/cli.md).\n\n" +
			"Exit status: 0 when the agent is up (connected, or connecting in the background),\n" +
			"1 when it is down, needs a login, no daemon runs, or the daemon cannot be asked\n" +
			"(the state is still printed), 2 for a usage error.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, closeFn, err := dialDaemon(g.socketPath())
			if errors.Is(err, errSocketPermission) {
				return err
			}
			if err != nil {
				// No daemon is a state, not an error: say so and how to start.
				if asJSON {
					var j statusJSON
					j.State = "down"
					j.Peers, j.Routes, j.Unsupported = []peerStatusJSON{}, []routeJSON{}, []unsupportedJSON{}
					if err := writeJSON(cmd.OutOrStdout(), j); err != nil {
						return err
					}
					return errStatusDown
				}
				fmt.Fprintf(cmd.OutOrStdout(), "State:      down (no petrel daemon at %s; start with `petrel up`)\n", g.socketPath())
				return errStatusDown
			}
			defer closeFn()
			ctx, cancel := withTimeout(10 * time.Second)
			defer cancel()
			st, err := cl.Status(ctx, &daemonpb.StatusRequest{})
			if err != nil {
				return rpcErr(err)
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), toJSON(st)); err != nil {
					return err
				}
			} else {
				printStatus(cmd.OutOrStdout(), st)
			}
			if st.State == "down" || st.State == "needs-login" {
				return errStatusDown
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (stable contract)")
	return cmd
}

// errQuiet ends a command with its exit status and no message (what it
// had to say is printed already).
var errQuiet = errors.New("")

// errStatusDown is status's exit 1 for an agent that is not up.
var errStatusDown = &exitError{1, errQuiet}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func yesNo(b bool) string {
	if b {
		return "connected"
	}
	return "disconnected"
}

func printStatus(w io.Writer, st *daemonpb.StatusResponse) {
	fmt.Fprintf(w, "State:      %s\n", st.State)
	if st.LastError != "" {
		fmt.Fprintf(w, "Last error: %s\n", st.LastError)
	}
	if st.State == "down" || st.State == "needs-login" {
		return
	}
	fmt.Fprintf(w, "Address:    %s (%s)\n", st.Ip, st.Fqdn)
	mgmt := yesNo(st.ManagementConnected)
	if !st.ManagementConnected && st.MapAgeSeconds > 0 {
		mgmt += fmt.Sprintf(" (network map %s old", (time.Duration(st.MapAgeSeconds) * time.Second).String())
		if st.MapFromCache {
			mgmt += ", from the on-disk cache"
		}
		mgmt += ")"
	}
	fmt.Fprintf(w, "Management: %s %s\n", st.ManagementUrl, mgmt)
	fmt.Fprintf(w, "Signal:     %s\n", yesNo(st.SignalConnected))
	fmt.Fprintf(w, "Relay:      %s %s\n", st.RelayHomeUrl, yesNo(st.RelayConnected))
	if st.Socks5Addr != "" {
		fmt.Fprintf(w, "SOCKS5:     %s\n", st.Socks5Addr)
	}
	if st.Dns != nil {
		dnsLine := strings.Join(st.Dns.Listeners, ", ")
		if st.Dns.HostMode != "" && st.Dns.HostMode != "off" {
			dnsLine += " (host: " + st.Dns.HostMode + ")"
		}
		if st.Dns.Error != "" {
			dnsLine += " — " + st.Dns.Error
		}
		fmt.Fprintf(w, "DNS:        %s\n", dnsLine)
	}
	if st.ExitNode != nil && (st.ExitNode.Active || st.ExitNode.Peer != "") {
		fmt.Fprintln(w, describeExit(st.ExitNode))
	}
	for _, u := range st.Unsupported {
		fmt.Fprintf(w, "Unsupported: %s\n", u.Message)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tIP\tSTATUS\tPATH\tLATENCY\tLAST HANDSHAKE\tRX/TX")
	for _, p := range st.Peers {
		path := p.Path
		if p.Path == "relay" && p.RelayReason != "" {
			path += " (" + p.RelayReason + ")"
		}
		lat := "-"
		if p.LatencyMs > 0 {
			lat = fmt.Sprintf("%s (%ds ago)", fmtLatency(p.LatencyMs), p.LatencyAgeS)
		}
		status := p.Status
		if p.OfflineReason != "" {
			status += " (" + p.OfflineReason + ")"
		}
		hs := "never"
		if p.LastHandshakeUnix > 0 {
			hs = time.Since(time.Unix(p.LastHandshakeUnix, 0)).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s/%s\n", printable.Escape(p.Fqdn), p.Ip, status, path, lat, hs,
			humanBytes(p.RxBytes), humanBytes(p.TxBytes))
	}
	tw.Flush()
}

// fmtLatency prints a round trip in ms with two significant digits below
// 10 ms (loopback and LAN round trips are fractions of a millisecond).
func fmtLatency(ms float64) string {
	if ms < 10 {
		return fmt.Sprintf("%.2gms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
