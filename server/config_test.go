package server

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestParseComponents(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"management,signal,relay,stun", "management,signal,relay,stun", ""},
		{" Relay , mgmt ", "management,relay", ""},
		{"stun,stun", "stun", ""},
		{"management,dns", "", `unknown component "dns"`},
		{"", "", "at least one component"},
		{" , ", "", "at least one component"},
	} {
		c, err := ParseComponents(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseComponents(%q) = %v, want error %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || c.String() != tc.want {
			t.Errorf("ParseComponents(%q) = %q, %v; want %q", tc.in, c, err, tc.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	ok := func() Config { return Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"} }
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none: valid
	}{
		{"minimal", func(*Config) {}, nil},
		{"no data dir", func(c *Config) { c.DataDir = "" }, []string{"--data-dir is required"}},
		{"no listen", func(c *Config) { c.Listen = "" }, []string{"--listen is required"}},
		{"listen without port", func(c *Config) { c.Listen = "8080" }, []string{"--listen"}},
		{"listen bad port", func(c *Config) { c.Listen = ":99999" }, []string{"--listen", "bad port"}},
		{"stun listen", func(c *Config) { c.STUNListen = "x" }, []string{"--stun-listen"}},
		{"stun listen unused", func(c *Config) { c.STUNListen = "x"; c.Components = Components{Relay: true} }, nil},
		{"store", func(c *Config) { c.Store = "mysql://u:secret@h/db" }, []string{"--store", "unknown store type"}},
		{"store unused by relay", func(c *Config) { c.Store = "mysql://x"; c.Components = Components{Relay: true} }, nil},
		{"public url scheme", func(c *Config) { c.PublicURL = "ftp://x" }, []string{"--public-url"}},
		{"public url trailing slash", func(c *Config) { c.PublicURL = "https://m.example/" }, nil},
		{"relay url", func(c *Config) { c.RelayURLs = []string{"http://x"} }, []string{"--relay-url"}},
		{"relay instance url", func(c *Config) { c.RelayInstanceURL = "rel://" }, []string{"--relay-instance-url"}},
		{"stun url", func(c *Config) { c.STUNURLs = []string{"udp://x:3478"} }, []string{"--stun-url"}},
		{"signal key file with management", func(c *Config) { c.SignalKeyFile = "k" }, []string{"--signal-key-file"}},
		{"signal key file alone", func(c *Config) { c.SignalKeyFile = "k"; c.Components = Components{Signal: true} }, nil},
		{"every problem reported", func(c *Config) { c.DataDir, c.Listen, c.RelayURLs = "", "x", []string{"y"} },
			[]string{"--data-dir", "--listen", "--relay-url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok()
			tc.modify(&cfg)
			srv, err := New(cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if srv.cfg.Components != AllComponents && cfg.Components == (Components{}) {
					t.Fatal("components not defaulted")
				}
				if strings.HasSuffix(srv.cfg.PublicURL, "/") {
					t.Fatal("trailing slash kept")
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the store spec: %v", err)
			}
		})
	}
}

func TestDeriveEndpoints(t *testing.T) {
	host := func() (string, error) { return "box.example", nil }
	noHost := func() (string, error) { return "", errors.New("no hostname") }
	tcp := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	udp := &net.UDPAddr{IP: net.IPv4zero, Port: 3478}
	for _, tc := range []struct {
		name             string
		cfg              Config
		tcp, stun        net.Addr
		public, instance string
		relays, stuns    []string
		warnings         int
		err              string
	}{
		{name: "unspecified listen uses hostname", tcp: tcp, stun: udp, public: "http://box.example:8080", instance: "rel://box.example:8080",
			relays: []string{"rel://box.example:8080"}, stuns: []string{"stun:box.example:3478"}, warnings: 1},
		{name: "unspecified listen without hostname", cfg: Config{Hostname: noHost}, tcp: tcp, stun: udp, err: "set --public-url"},
		{name: "listen host", tcp: &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9000}, stun: udp, public: "http://10.0.0.1:9000",
			instance: "rel://10.0.0.1:9000", relays: []string{"rel://10.0.0.1:9000"}, stuns: []string{"stun:10.0.0.1:3478"}},
		{name: "ipv6 listen host", tcp: &net.TCPAddr{IP: net.IPv6loopback, Port: 9000}, stun: udp, public: "http://[::1]:9000",
			instance: "rel://[::1]:9000", relays: []string{"rel://[::1]:9000"}, stuns: []string{"stun:[::1]:3478"}},
		{name: "https public url", cfg: Config{PublicURL: "https://mgmt.example.net"}, tcp: tcp, stun: udp, public: "https://mgmt.example.net",
			instance: "rels://mgmt.example.net:443", relays: []string{"rels://mgmt.example.net:443"}, stuns: []string{"stun:mgmt.example.net:3478"}},
		{name: "explicit relays", cfg: Config{PublicURL: "http://m.example:80", RelayURLs: []string{"rel://relay.example.net:8080"},
			RelayInstanceURL: "rel://eu-1.relay.example.net:8080", STUNURLs: []string{"stun:s.example:3478"}}, tcp: tcp, stun: udp,
			public: "http://m.example:80", instance: "rel://eu-1.relay.example.net:8080", relays: []string{"rel://relay.example.net:8080"},
			stuns: []string{"stun:s.example:3478"}},
		{name: "management without relay or stun", cfg: Config{PublicURL: "http://m.example", Components: Components{Management: true}},
			tcp: tcp, public: "http://m.example", warnings: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.DataDir, cfg.Listen = t.TempDir(), ":8080"
			if cfg.Hostname == nil {
				cfg.Hostname = host
			}
			cfg, err := cfg.validate()
			if err != nil {
				t.Fatal(err)
			}
			ep, warnings, err := deriveEndpoints(&cfg, tc.tcp, tc.stun)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want error %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ep.PublicURL != tc.public || ep.RelayInstanceURL != tc.instance ||
				strings.Join(ep.RelayURLs, " ") != strings.Join(tc.relays, " ") || strings.Join(ep.STUNURLs, " ") != strings.Join(tc.stuns, " ") {
				t.Fatalf("got %+v", ep)
			}
			if len(warnings) != tc.warnings {
				t.Fatalf("warnings %q, want %d", warnings, tc.warnings)
			}
		})
	}
}
