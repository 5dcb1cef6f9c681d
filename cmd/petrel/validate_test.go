package main

import (
	"path/filepath"
	"strings"
	"testing"

	"petrel/internal/cmdline"
)

func goodDaemonFlags() daemonFlags {
	return daemonFlags{netstack: true, iface: "petrel0", mtu: 1280, socks5: "127.0.0.1:0", dnsMode: "auto", dnsAddr: "127.0.0.1:0"}
}

// TestValidateDaemonFlags: each bad value is a usage error naming its
// flag; all problems are reported together; paths become absolute.
func TestValidateDaemonFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*daemonFlags)
		want string
	}{
		{"good", func(*daemonFlags) {}, ""},
		{"max port", func(f *daemonFlags) { f.wgPort = 65535 }, ""},
		{"port too big", func(f *daemonFlags) { f.wgPort = 70000 }, "--wg-port 70000: want a port number from 0 to 65535"},
		{"negative port", func(f *daemonFlags) { f.wgPort = -1 }, "--wg-port -1"},
		{"mtu", func(f *daemonFlags) { f.mtu = 100 }, "--mtu 100"},
		{"interface", func(f *daemonFlags) { f.iface = "a-very-long-interface" }, "--interface"},
		{"dns mode", func(f *daemonFlags) { f.dnsMode = "hosts" }, `--dns-mode "hosts": want auto, file, resolved, off`},
		{"socks5", func(f *daemonFlags) { f.socks5 = "localhost" }, "--socks5"},
		{"socks5 port", func(f *daemonFlags) { f.socks5 = "127.0.0.1:99999" }, "--socks5 99999"},
		{"dns not loopback", func(f *daemonFlags) { f.dnsAddr = "10.0.0.1:53" }, "--dns \"10.0.0.1:53\": must be a loopback address"},
		{"dns ignored in tun mode", func(f *daemonFlags) { f.netstack, f.dnsAddr = false, "x" }, ""},
		{"every problem", func(f *daemonFlags) { f.wgPort, f.mtu = 70000, 1 }, "--wg-port 70000: want a port number from 0 to 65535 (0 = choose one); --mtu 1"},
	} {
		f := goodDaemonFlags()
		tc.edit(&f)
		err := f.validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || cmdline.ExitCode(err) != 2 {
			t.Errorf("%s: %v (exit %d), want a usage error with %q", tc.name, err, cmdline.ExitCode(err), tc.want)
		}
	}
	f := goodDaemonFlags()
	f.caFile = "ca.pem"
	if err := f.validate(); err != nil || !filepath.IsAbs(f.caFile) {
		t.Errorf("--ca-file not made absolute: %q %v", f.caFile, err)
	}
}

func TestValidateURLAndHostname(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "", ""},
		{"http://vpn.example.net:8080/", "http://vpn.example.net:8080", ""},
		{"https://vpn.example.net", "https://vpn.example.net", ""},
		{"vpn.example.net", "", "--management-url: management URL \"vpn.example.net\" has no scheme"},
		{"ftp://vpn.example.net", "", "not supported"},
		{"http://", "", "no host"},
	} {
		got, err := validateURL("--management-url", tc.in)
		if got != tc.want || (tc.err == "") != (err == nil) || err != nil && (!strings.Contains(err.Error(), tc.err) || cmdline.ExitCode(err) != 2) {
			t.Errorf("%q: %q, %v; want %q, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	for _, tc := range []struct{ in, err string }{
		{"", ""}, {"laptop", ""}, {"Bob's laptop", ""}, {"   ", "blank"}, {"a\x1b[2Jb", "control characters"},
		{strings.Repeat("a", 254), "too long"}, {"\xff", "UTF-8"},
	} {
		err := validateHostname("--hostname", tc.in)
		if (tc.err == "") != (err == nil) || err != nil && (!strings.Contains(err.Error(), tc.err) || cmdline.ExitCode(err) != 2) {
			t.Errorf("hostname %q: %v, want %q", tc.in, err, tc.err)
		}
	}
	if validatePositive("--timeout", 0) == nil {
		t.Error("--timeout 0 accepted")
	}
}
