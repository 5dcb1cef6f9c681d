package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"petrel/management"
	"petrel/management/store/storeopen"
	"petrel/relay"
)

// Files inside the data directory.
const (
	AdminTokenFile  = "admin-token"
	RelaySecretFile = "relay-secret"
)

// DefaultShutdownTimeout bounds the graceful part of Stop.
const DefaultShutdownTimeout = 10 * time.Second

// DefaultMaxConnsPerSource caps the TCP connections one source IP may hold
// open at once (Config.MaxConnsPerSource). An agent needs one gRPC
// connection plus a relay WebSocket; 64 leaves room for agents behind one
// NAT and for admin tools, while one host can no longer fill the
// descriptor table. See docs/server-limits.md.
const DefaultMaxConnsPerSource = 64

// limits are the connection timeouts (docs/server-limits.md). They are
// not configurable; tests shorten them through Config.limits.
type limits struct {
	// HTTP/1 (REST, /healthz, the relay WebSocket's upgrade request).
	readHeader time.Duration // request line and headers
	body       time.Duration // whole request incl. body, REST and /healthz only
	write      time.Duration // response, REST and /healthz only
	httpIdle   time.Duration // keep-alive connection between requests
	// gRPC (HTTP/2).
	grpcIdle      time.Duration // no open stream: GOAWAY and close
	pingTime      time.Duration // silence before the server pings
	pingTimeout   time.Duration // ping ack wait before closing
	minClientPing time.Duration // clients pinging more often get GOAWAY
	maxStreams    uint32        // concurrent streams per connection
}

var defaultLimits = limits{
	readHeader:    10 * time.Second,
	body:          30 * time.Second,
	write:         60 * time.Second,
	httpIdle:      2 * time.Minute,
	grpcIdle:      2 * time.Minute,
	pingTime:      time.Minute,
	pingTimeout:   20 * time.Second,
	minClientPing: 10 * time.Second,
	maxStreams:    128,
}

// Components selects the parts a process runs.
type Components struct {
	Management, Signal, Relay, STUN bool
}

// AllComponents runs everything.
var AllComponents = Components{true, true, true, true}

// componentNames is the canonical order of the names.
var componentNames = []string{"management", "signal", "relay", "stun"}

// ParseComponents parses a comma-separated list such as
// "management,signal,relay,stun" (case and spaces ignored; "mgmt" is an
// alias of management).
func ParseComponents(s string) (Components, error) {
	var c Components
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(strings.ToLower(p)) {
		case "management", "mgmt":
			c.Management = true
		case "signal":
			c.Signal = true
		case "relay":
			c.Relay = true
		case "stun":
			c.STUN = true
		case "":
		default:
			return Components{}, fmt.Errorf("unknown component %q (want %s)", strings.TrimSpace(p), strings.Join(componentNames, ","))
		}
	}
	if c == (Components{}) {
		return c, errors.New("at least one component is required")
	}
	return c, nil
}

// String lists the selected components in canonical order, comma-separated.
func (c Components) String() string {
	var out []string
	for i, on := range []bool{c.Management, c.Signal, c.Relay, c.STUN} {
		if on {
			out = append(out, componentNames[i])
		}
	}
	return strings.Join(out, ",")
}

// Config configures a Server. Only DataDir and Listen are required; New
// validates it and fills in defaults. Validation errors name the
// petrel-server flag of the field (Listen: --listen), because that is where
// the values come from.
type Config struct {
	DataDir    string // store (SQLite), admin token, relay secret
	Listen     string // host:port of the one TCP listener (gRPC, REST, relay)
	STUNListen string // host:port (UDP); "" = ":3478"
	Store      string // storeopen spec: "" or "sqlite", "sqlite:///path.db", "postgres://DSN"
	// HA runs this process as one of several petrel-servers on one
	// PostgreSQL store (--ha; docs/adr-005-ha-control-plane.md): no
	// single-writer lock, and management follows the others' commits.
	HA bool
	// PublicURL is the URL agents use for management and signal; "" derives
	// http://<listen host, or the hostname if unspecified>:<bound port>,
	// https:// with TLS, and with ACME the first ACME domain as the host.
	PublicURL string
	// TLS makes the listener serve TLS (tlsconfig.go); zero = plaintext.
	TLS TLSConfig
	// RelayURLs are advertised to agents; "" = this process's relay
	// instance URL when the relay runs here.
	RelayURLs []string
	// STUNURLs are advertised to agents; "" = stun:<public host>:<STUN
	// port> when STUN runs here.
	STUNURLs []string
	// RelaySecretFile is the relay pool's shared HMAC secret, created if
	// absent (default DATA_DIR/relay-secret).
	RelaySecretFile string
	// RelayInstanceURL is the URL this relay instance announces; "" =
	// rel://<public host>:<public port> (rels:// for an https public URL).
	RelayInstanceURL string
	// SignalKeyFile, for signal running without management, is a key file
	// (created if absent) used instead of the server key in the store, so no
	// store is opened. Agents must then not pin the management key.
	SignalKeyFile string
	Components    Components // zero value: all
	Logger        *slog.Logger
	// RelayTokenTTL overrides the relay token lifetime (tests).
	RelayTokenTTL time.Duration
	// ShutdownTimeout bounds how long Stop lets in-flight requests finish
	// (default 10 s).
	ShutdownTimeout time.Duration
	// Hostname names this machine when the public URL must be derived from
	// an unspecified listen address (default os.Hostname).
	Hostname func() (string, error)
	// MaxConnsPerSource caps the TCP connections open at once from one
	// source IP; more are closed on accept. 0 = DefaultMaxConnsPerSource,
	// negative = no cap.
	MaxConnsPerSource int
	// LoginLimits bound logins per source and per peer (zero fields:
	// management's defaults; negative rates: off, for load tests).
	LoginLimits management.LoginLimits
	// MetricsListen is the host:port of the metrics listener (/metrics
	// and, with Pprof, /debug/pprof/), apart from Listen; "" or "off" =
	// none. The petrel-server flag defaults to DefaultMetricsListen.
	MetricsListen string
	// Pprof serves Go's profiler on the metrics listener (never on Listen).
	Pprof bool
	// OIDC turns on sign-in through an OpenID provider (oidc.go).
	OIDC OIDC
	// ClusterURL, with HA and signal, is where the other instances reach
	// this one to forward signal envelopes (cluster.go); "" = http(s)://
	// the bound listen address (the hostname if unspecified). Not the
	// public URL, which may name a load balancer.
	ClusterURL string

	// clusterBeat and clusterTTL: presence heartbeat and the age after
	// which an instance counts as dead (zero: the defaults; tests).
	clusterBeat, clusterTTL time.Duration
	// fenceAfter: with HA, how long the database may be unreachable
	// before the instance fences itself (zero: DefaultFenceAfter; tests).
	fenceAfter time.Duration
	// fenceProbe replaces the database ping of the fence (tests).
	fenceProbe func(context.Context) error

	limits limits // zero fields: defaultLimits (tests shorten them)
}

// validate checks c and returns it with defaults filled in; every problem
// is reported, joined.
func (c Config) validate() (Config, error) {
	var errs []error
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Hostname == nil {
		c.Hostname = os.Hostname
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.Components == (Components{}) {
		c.Components = AllComponents
	}
	if c.MaxConnsPerSource == 0 {
		c.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	c.limits = c.limits.withDefaults()
	if c.STUNListen == "" {
		c.STUNListen = ":3478"
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	} else if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	if c.Listen == "" {
		errs = append(errs, errors.New("--listen is required"))
	} else if err := checkHostPort("--listen", c.Listen); err != nil {
		errs = append(errs, err)
	}
	if c.Components.STUN {
		if err := checkHostPort("--stun-listen", c.STUNListen); err != nil {
			errs = append(errs, err)
		}
	}
	if c.opensStore() {
		if _, _, err := storeopen.Parse(c.Store, c.DataDir); err != nil && c.DataDir != "" {
			errs = append(errs, fmt.Errorf("--store: %w", err))
		}
	}
	if c.HA {
		if kind, _, err := storeopen.Parse(c.Store, "."); err == nil && kind != "postgres" {
			errs = append(errs, errors.New("--ha: several instances share one PostgreSQL store; set --store postgres://…"))
		}
	}
	if c.ClusterURL != "" {
		c.ClusterURL = strings.TrimSuffix(c.ClusterURL, "/")
		if u, err := url.Parse(c.ClusterURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			errs = append(errs, fmt.Errorf("--cluster-url %q: want http://HOST:PORT or https://HOST:PORT", c.ClusterURL))
		}
	}
	if c.HA && c.SignalKeyFile != "" {
		errs = append(errs, errors.New("--signal-key-file: not with --ha (cross-instance signal needs the shared store and its server key)"))
	}
	if c.clusterBeat <= 0 {
		c.clusterBeat = DefaultClusterHeartbeat
	}
	if c.clusterTTL <= 0 {
		c.clusterTTL = DefaultClusterTTL
	}
	if c.fenceAfter <= 0 {
		c.fenceAfter = DefaultFenceAfter
	}
	if c.SignalKeyFile != "" && (c.Components.Management || !c.Components.Signal) {
		errs = append(errs, errors.New("--signal-key-file: only for signal running without management (management's key is in the store)"))
	}
	errs = append(errs, c.TLS.validate(c.DataDir)...)
	errs = append(errs, c.validateMetrics()...)
	errs = append(errs, c.OIDC.validate()...)
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--public-url %q: want http://HOST[:PORT] or https://HOST[:PORT]", c.PublicURL))
		} else if u.Scheme == "http" && c.TLS.Enabled() {
			errs = append(errs, errTLSPlainPublicURL(c.PublicURL))
		}
	}
	for _, r := range c.RelayURLs {
		if err := relay.ValidateURL(r); err != nil {
			errs = append(errs, fmt.Errorf("--relay-url: %w", err))
		}
	}
	if c.RelayInstanceURL != "" {
		if err := relay.ValidateURL(c.RelayInstanceURL); err != nil {
			errs = append(errs, fmt.Errorf("--relay-instance-url: %w", err))
		}
	}
	for _, s := range c.STUNURLs {
		if !strings.HasPrefix(s, "stun:") && !strings.HasPrefix(s, "stuns:") {
			errs = append(errs, fmt.Errorf("--stun-url %q: want stun:HOST:PORT", s))
		}
	}
	if c.RelaySecretFile == "" && c.DataDir != "" {
		c.RelaySecretFile = filepath.Join(c.DataDir, RelaySecretFile)
	}
	return c, errors.Join(errs...)
}

// opensStore reports whether the process needs the store: management
// always, signal alone for the server key unless it has a key file.
func (c *Config) opensStore() bool {
	return c.Components.Management || (c.Components.Signal && c.SignalKeyFile == "")
}

func checkHostPort(flag, s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%s %q: want HOST:PORT: %w", flag, s, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return fmt.Errorf("%s %q: bad port", flag, s)
	}
	return nil
}

// Endpoints are the URLs a server advertises, derived once its sockets are
// bound (so a ":0" listen address yields the real port).
type Endpoints struct {
	PublicURL        string   // management and signal
	RelayInstanceURL string   // this process's relay instance ("" without relay)
	RelayURLs        []string // advertised to agents
	STUNURLs         []string // advertised to agents
}

// deriveEndpoints fills in defaults from the bound addresses. stunAddr is
// nil when STUN does not run here. Warnings are for the operator's log.
func deriveEndpoints(c *Config, tcpAddr, stunAddr net.Addr) (ep Endpoints, warnings []string, err error) {
	pub := c.PublicURL
	if pub == "" {
		host, port, err := net.SplitHostPort(tcpAddr.String())
		if err != nil {
			return ep, nil, fmt.Errorf("derive public url: %w", err)
		}
		scheme := "http"
		if c.TLS.Enabled() {
			scheme = "https"
		}
		switch ip := net.ParseIP(host); {
		case len(c.TLS.ACME.Domains) > 0:
			host = c.TLS.ACME.Domains[0] // the name on the certificate
		case ip == nil || ip.IsUnspecified():
			h, err := c.Hostname()
			if err != nil || h == "" {
				return ep, nil, errors.New("derive public url: listen address is unspecified and the hostname is unknown; set --public-url")
			}
			host = h
			warnings = append(warnings, fmt.Sprintf("--public-url not set; advertising %s://%s to agents (set --public-url if they cannot resolve it)", scheme, net.JoinHostPort(host, port)))
		}
		pub = scheme + "://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(pub)
	if err != nil {
		return ep, nil, fmt.Errorf("parse public url: %w", err)
	}
	ep.PublicURL = u.String()
	pubHost, pubPort := u.Hostname(), u.Port()
	if pubPort == "" {
		pubPort = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if c.Components.Relay {
		ep.RelayInstanceURL = c.RelayInstanceURL
		if ep.RelayInstanceURL == "" {
			scheme := "rel"
			if u.Scheme == "https" {
				scheme = "rels"
			}
			ep.RelayInstanceURL = scheme + "://" + net.JoinHostPort(pubHost, pubPort)
		}
	}
	ep.RelayURLs = c.RelayURLs
	if len(ep.RelayURLs) == 0 && ep.RelayInstanceURL != "" {
		ep.RelayURLs = []string{ep.RelayInstanceURL}
	}
	ep.STUNURLs = c.STUNURLs
	if len(ep.STUNURLs) == 0 && stunAddr != nil {
		_, port, err := net.SplitHostPort(stunAddr.String())
		if err != nil {
			return ep, nil, fmt.Errorf("derive stun url: %w", err)
		}
		ep.STUNURLs = []string{"stun:" + net.JoinHostPort(pubHost, port)}
	}
	if c.Components.Management && len(ep.RelayURLs) == 0 {
		warnings = append(warnings, "no relay advertised (relay component off and no --relay-url): peers behind symmetric NATs cannot connect")
	}
	return ep, warnings, nil
}

// withDefaults fills the zero fields of l from defaultLimits.
func (l limits) withDefaults() limits {
	d := defaultLimits
	for _, f := range []struct{ v, def *time.Duration }{
		{&l.readHeader, &d.readHeader}, {&l.body, &d.body}, {&l.write, &d.write}, {&l.httpIdle, &d.httpIdle},
		{&l.grpcIdle, &d.grpcIdle}, {&l.pingTime, &d.pingTime}, {&l.pingTimeout, &d.pingTimeout},
		{&l.minClientPing, &d.minClientPing},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if l.maxStreams == 0 {
		l.maxStreams = d.maxStreams
	}
	return l
}
