package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"petrel/management/store/storeopen"
	"petrel/relay"
)

// Component names accepted by --components.
const (
	compManagement = "management"
	compSignal     = "signal"
	compRelay      = "relay"
	compSTUN       = "stun"
)

var allComponents = []string{compManagement, compSignal, compRelay, compSTUN}

// Files inside the data directory.
const (
	adminTokenFile  = "admin-token"
	relaySecretFile = "relay-secret"
)

// runConfig is the validated configuration of `petrel-server run`, read once
// from flags. Nothing below cmd reads flags or environment.
type runConfig struct {
	DataDir          string
	Listen           string // host:port of the TCP listener (gRPC, REST, relay)
	STUNListen       string // host:port of the STUN UDP socket
	Store            string // storeopen spec
	PublicURL        string // empty: derived from the bound address
	RelayURLs        []string
	STUNURLs         []string
	RelaySecretFile  string
	RelayInstanceURL string // empty: derived from the public URL
	Components       []string
	LogLevel         slog.Level
}

func (c *runConfig) has(component string) bool { return slices.Contains(c.Components, component) }

// runFlags holds raw flag values before validation.
type runFlags struct {
	dataDir, listen, stunListen, store, publicURL string
	relayURLs, stunURLs                           []string
	relaySecretFile, relayInstanceURL             string
	components                                    string
	logLevel                                      string
}

// config validates the flags into a runConfig.
func (f *runFlags) config() (*runConfig, error) {
	var errs []error
	c := &runConfig{
		DataDir: f.dataDir, Listen: f.listen, STUNListen: f.stunListen, Store: f.store,
		PublicURL: strings.TrimSuffix(f.publicURL, "/"), RelaySecretFile: f.relaySecretFile,
		RelayInstanceURL: f.relayInstanceURL,
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	} else if abs, err := filepath.Abs(c.DataDir); err == nil {
		c.DataDir = abs
	}
	for _, name := range strings.Split(f.components, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		if !slices.Contains(allComponents, name) {
			errs = append(errs, fmt.Errorf("--components: unknown component %q (want %s)", name, strings.Join(allComponents, ",")))
			continue
		}
		if !slices.Contains(c.Components, name) {
			c.Components = append(c.Components, name)
		}
	}
	if len(c.Components) == 0 {
		errs = append(errs, errors.New("--components: at least one component is required"))
	}
	if err := checkHostPort("--listen", c.Listen); err != nil {
		errs = append(errs, err)
	}
	if c.has(compSTUN) {
		if err := checkHostPort("--stun-listen", c.STUNListen); err != nil {
			errs = append(errs, err)
		}
	}
	if c.has(compManagement) || c.has(compSignal) {
		if _, _, err := storeopen.Parse(c.Store, c.DataDir); err != nil {
			errs = append(errs, fmt.Errorf("--store: %w", err))
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--public-url %q: want http://HOST[:PORT] or https://HOST[:PORT]", f.publicURL))
		}
	}
	for _, r := range f.relayURLs {
		if err := relay.ValidateURL(r); err != nil {
			errs = append(errs, fmt.Errorf("--relay-url: %w", err))
		}
		c.RelayURLs = append(c.RelayURLs, r)
	}
	if c.RelayInstanceURL != "" {
		if err := relay.ValidateURL(c.RelayInstanceURL); err != nil {
			errs = append(errs, fmt.Errorf("--relay-instance-url: %w", err))
		}
	}
	for _, s := range f.stunURLs {
		if !strings.HasPrefix(s, "stun:") && !strings.HasPrefix(s, "stuns:") {
			errs = append(errs, fmt.Errorf("--stun-url %q: want stun:HOST:PORT", s))
		}
		c.STUNURLs = append(c.STUNURLs, s)
	}
	if c.RelaySecretFile == "" && c.DataDir != "" {
		c.RelaySecretFile = filepath.Join(c.DataDir, relaySecretFile)
	}
	if err := c.LogLevel.UnmarshalText([]byte(f.logLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
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

// endpoints are the URLs the server advertises, derived once the sockets
// are bound (so a ":0" listen address yields the real port).
type endpoints struct {
	Public           *url.URL // management and signal
	RelayInstanceURL string   // this process's relay instance ("" without relay)
	RelayURLs        []string // advertised to agents
	STUNURLs         []string // advertised to agents
	Warnings         []string
}

// deriveEndpoints fills in defaults from the bound addresses. stunAddr is
// nil when the STUN component does not run here.
func deriveEndpoints(c *runConfig, tcpAddr, stunAddr net.Addr, hostname func() (string, error)) (*endpoints, error) {
	ep := &endpoints{}
	pub := c.PublicURL
	if pub == "" {
		host, port, err := net.SplitHostPort(tcpAddr.String())
		if err != nil {
			return nil, fmt.Errorf("derive public url: %w", err)
		}
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			h, err := hostname()
			if err != nil || h == "" {
				return nil, fmt.Errorf("derive public url: listen address is unspecified and the hostname is unknown; set --public-url")
			}
			host = h
			ep.Warnings = append(ep.Warnings, fmt.Sprintf("--public-url not set; advertising http://%s to agents (set --public-url if they cannot resolve it)", net.JoinHostPort(host, port)))
		}
		pub = "http://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(pub)
	if err != nil {
		return nil, fmt.Errorf("parse public url: %w", err)
	}
	ep.Public = u
	pubHost := u.Hostname()
	pubPort := u.Port()
	if pubPort == "" {
		pubPort = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if c.has(compRelay) {
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
			return nil, fmt.Errorf("derive stun url: %w", err)
		}
		ep.STUNURLs = []string{"stun:" + net.JoinHostPort(pubHost, port)}
	}
	if c.has(compManagement) && len(ep.RelayURLs) == 0 {
		ep.Warnings = append(ep.Warnings, "no relay advertised (relay component off and no --relay-url): peers behind symmetric NATs cannot connect")
	}
	return ep, nil
}

// osHostname is the default hostname source for deriveEndpoints.
func osHostname() (string, error) { return os.Hostname() }
