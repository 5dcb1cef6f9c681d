package wg

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// The system-tool command lines that configure a kernel TUN off Linux
// (run only there; built and checked here for every platform).
func TestSetupCommands(t *testing.T) {
	v4 := netip.MustParsePrefix("100.64.0.7/16")
	v6 := netip.MustParsePrefix("fd7a:1::7/48")
	for _, tc := range []struct {
		goos, name string
		addr       netip.Prefix
		want       [][]string
	}{
		{"darwin", "utun7", v4, [][]string{
			{"ifconfig", "utun7", "inet", "100.64.0.7/16", "100.64.0.7", "alias"},
			{"ifconfig", "utun7", "up"},
			{"route", "-q", "-n", "add", "-inet", "100.64.0.0/16", "-interface", "utun7"}}},
		{"freebsd", "petrel0", v6, [][]string{
			{"ifconfig", "petrel0", "inet6", "fd7a:1::7/48", "alias"},
			{"ifconfig", "petrel0", "up"},
			{"route", "-q", "-n", "add", "-inet6", "fd7a:1::/48", "-interface", "petrel0"}}},
		{"windows", "petrel0", v4, [][]string{
			{"netsh", "interface", "ipv4", "set", "subinterface", "petrel0", "mtu=1280", "store=active"},
			{"netsh", "interface", "ipv4", "set", "address", "name=petrel0", "source=static",
				"address=100.64.0.7", "mask=255.255.0.0", "store=active"}}},
		{"windows", "petrel0", v6, [][]string{
			{"netsh", "interface", "ipv6", "set", "subinterface", "petrel0", "mtu=1280", "store=active"},
			{"netsh", "interface", "ipv6", "add", "address", "petrel0", "fd7a:1::7/48", "store=active"}}},
	} {
		got, err := setupCommands(tc.goos, tc.name, 1280, tc.addr)
		if err != nil {
			t.Errorf("%s %s: %v", tc.goos, tc.addr, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s:\ngot  %q\nwant %q", tc.goos, tc.addr, got, tc.want)
		}
	}
}

// Bad names and addresses are refused before any tool runs: a name must
// not read as an option, a second argument or a netsh key=value.
func TestSetupCommandsRefuse(t *testing.T) {
	v4 := netip.MustParsePrefix("100.64.0.7/16")
	for _, name := range []string{"", "-interface", "a b", "name=x", "x\ty", "../x", `a"b`} {
		if cmds, err := setupCommands("darwin", name, 1280, v4); err == nil {
			t.Errorf("name %q accepted: %q", name, cmds)
		}
		if cmds, err := deleteCommands("freebsd", name); err == nil {
			t.Errorf("delete: name %q accepted: %q", name, cmds)
		}
	}
	if _, err := setupCommands("darwin", "utun3", 1280, netip.Prefix{}); err == nil {
		t.Error("invalid address accepted")
	}
	if _, err := setupCommands("plan9", "petrel0", 1280, v4); err == nil || !strings.Contains(err.Error(), "netstack") {
		t.Errorf("unknown platform: err = %v, want a pointer to netstack mode", err)
	}
}

func TestDeleteCommandsAndDefaults(t *testing.T) {
	if got, _ := deleteCommands("freebsd", "petrel0"); !reflect.DeepEqual(got, [][]string{{"ifconfig", "petrel0", "destroy"}}) {
		t.Errorf("freebsd delete = %q", got)
	}
	for _, goos := range []string{"darwin", "windows"} {
		if got, err := deleteCommands(goos, "utun3"); got != nil || err != nil {
			t.Errorf("%s delete = %q, %v; want nothing (the TUN goes with the process)", goos, got, err)
		}
	}
	for goos, want := range map[string]string{"darwin": "utun", "linux": "petrel0", "windows": "petrel0", "freebsd": "petrel0"} {
		if got := defaultInterfaceName(goos); got != want {
			t.Errorf("defaultInterfaceName(%s) = %q, want %q", goos, got, want)
		}
	}
}

// A failed TUN creation says what the platform needs.
func TestCreateHint(t *testing.T) {
	for goos, want := range map[string]string{"windows": "wintun.dll", "darwin": "utun", "linux": "", "freebsd": ""} {
		got := createHint(goos)
		if want == "" && got != "" || !strings.Contains(got, want) {
			t.Errorf("createHint(%s) = %q, want it to name %q", goos, got, want)
		}
	}
}
