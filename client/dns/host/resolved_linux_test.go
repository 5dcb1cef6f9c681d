package host

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

func TestResolvedIsHostResolver(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A relative target is resolved against the link's directory.
	rel, _ := filepath.Rel(dir, resolvedStub)
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"stub symlink (absolute)", link("a", resolvedStub), true},
		{"uplinks symlink", link("b", resolvedUplinks), true},
		{"stub symlink (relative)", link("c", rel), true},
		{"stub nameserver in a plain file", write("d", "# x\nnameserver 127.0.0.53\noptions edns0 trust-ad\n"), true},
		{"plain file", write("e", "nameserver 192.0.2.1\n"), false},
		{"other symlink", link("f", "/run/NetworkManager/resolv.conf"), false},
		{"missing", filepath.Join(dir, "none"), false},
	}
	for _, tt := range tests {
		if got := resolvedIsHostResolver(tt.path); got != tt.want {
			t.Errorf("%s: got %v want %v", tt.name, got, tt.want)
		}
	}
}

func TestLinkDomains(t *testing.T) {
	tests := []struct {
		search, match []string
		want          []linkDomain
		primary       bool
	}{
		{[]string{"petrel.internal"}, []string{"petrel.internal", "~corp.example."},
			[]linkDomain{{"petrel.internal", false}, {"corp.example", true}}, false},
		{[]string{"petrel.internal"}, []string{"~.", "zone.example"},
			[]linkDomain{{"petrel.internal", false}, {".", true}, {"zone.example", true}}, true},
		{nil, []string{"."}, []linkDomain{{".", true}}, true},
		{nil, nil, []linkDomain{}, false},
	}
	for _, tt := range tests {
		got, primary := linkDomains(tt.search, tt.match)
		if !reflect.DeepEqual(got, tt.want) || primary != tt.primary {
			t.Errorf("linkDomains(%v, %v) = %v %v, want %v %v", tt.search, tt.match, got, primary, tt.want, tt.primary)
		}
	}
}

// fakeResolve1 implements the part of org.freedesktop.resolve1.Manager we
// call, recording each call.
type fakeResolve1 struct {
	mu      sync.Mutex
	calls   []string
	noLinks bool // RevertLink answers NoSuchLink
}

func (f *fakeResolve1) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeResolve1) SetLinkDNS(idx int32, addrs []linkAddress) *dbus.Error {
	f.record("SetLinkDNS %d %v", idx, addrs)
	return nil
}

func (f *fakeResolve1) SetLinkDomains(idx int32, d []linkDomain) *dbus.Error {
	f.record("SetLinkDomains %d %v", idx, d)
	return nil
}

func (f *fakeResolve1) SetLinkDefaultRoute(idx int32, on bool) *dbus.Error {
	f.record("SetLinkDefaultRoute %d %v", idx, on)
	return nil
}

func (f *fakeResolve1) RevertLink(idx int32) *dbus.Error {
	f.mu.Lock()
	gone := f.noLinks
	f.mu.Unlock()
	if gone {
		return dbus.NewError("org.freedesktop.resolve1.NoSuchLink", []any{"no such link"})
	}
	f.record("RevertLink %d", idx)
	return nil
}

func (f *fakeResolve1) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// privateBus starts a dbus-daemon on a socket in a temp dir and returns a
// dialer for it.
func privateBus(t *testing.T) func() (*dbus.Conn, error) {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon not installed (apt-get install dbus)")
	}
	addr := "unix:path=" + filepath.Join(t.TempDir(), "bus")
	cmd := exec.Command("dbus-daemon", "--session", "--nofork", "--address="+addr, "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "unix:") {
		t.Fatalf("dbus-daemon: %q %v", line, err)
	}
	full := strings.TrimSpace(line)
	return func() (*dbus.Conn, error) { return dbus.Connect(full) }
}

// serveFake owns org.freedesktop.resolve1 on the bus with f.
func serveFake(t *testing.T, dial func() (*dbus.Conn, error), f *fakeResolve1) {
	t.Helper()
	conn, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.Export(f, resolvedPath, resolvedIface); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.RequestName(resolvedName, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("request name: %v %v", r, err)
	}
}

func resolvedFixture(t *testing.T, dial func() (*dbus.Conn, error)) (*Manager, *fixture) {
	t.Helper()
	fx := newFixture(t, "# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\n")
	uplinks := filepath.Join(fx.dir, "uplinks.conf")
	if err := os.WriteFile(uplinks, []byte("nameserver 192.0.2.1\nnameserver 100.64.0.1\nsearch lan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{ResolvConf: fx.path, StateDir: fx.state, Interface: "pt0", Nameserver: ourNS,
		Search: []string{"petrel.internal"}, MatchDomains: []string{"~corp.example"}, Journal: fx.journal})
	if err != nil {
		t.Fatal(err)
	}
	m.plat.dialBus = dial
	m.plat.uplinksConf = uplinks
	m.plat.ifIndex = func(name string) (int, error) {
		if name != "pt0" {
			return 0, errors.New("no such interface")
		}
		return 7, nil
	}
	return m, fx
}

func TestResolvedModeOverPrivateBus(t *testing.T) {
	dial := privateBus(t)
	fake := &fakeResolve1{}
	serveFake(t, dial, fake)
	m, fx := resolvedFixture(t, dial)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if m.Mode() != ModeResolved {
		t.Fatalf("mode %q", m.Mode())
	}
	want := []string{
		"SetLinkDNS 7 [{2 [100 64 0 1]}]",
		"SetLinkDomains 7 [{petrel.internal false} {corp.example true}]",
		"SetLinkDefaultRoute 7 false",
	}
	if got := fake.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls\n got %q\nwant %q", got, want)
	}
	// Original: the uplink servers, never ourselves, never the stub.
	if o := m.Original(); !reflect.DeepEqual(o.Nameservers, aps("192.0.2.1")) {
		t.Fatalf("original %+v", o)
	}
	if st := m.Status(); st.Interface != "pt0" || st.Backup != "" {
		t.Fatalf("status %+v", st)
	}
	if got := mustRead(t, fx.path); !strings.Contains(got, "127.0.0.53") {
		t.Fatal("resolv.conf touched in resolved mode")
	}
	if err := m.Update([]string{"petrel.internal"}, []string{"~."}); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"SetLinkDNS 7 [{2 [100 64 0 1]}]",
		"SetLinkDomains 7 [{petrel.internal false} {. true}]",
		"SetLinkDefaultRoute 7 true",
	}
	if got := fake.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls after Update\n got %q\nwant %q", got, want)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fake.take(); !reflect.DeepEqual(got, []string{"RevertLink 7"}) {
		t.Fatalf("close calls %q", got)
	}
	es, _ := readJournal(fx.journal.path)
	if len(es) != 1 || es[0].Kind != KindResolvedLink || es[0].Name != "pt0" || es[0].Data["ifindex"] != "7" {
		t.Fatalf("journal %+v", es)
	}

	// Crash undo: reverts by the interface's current index; a missing
	// interface or link is success.
	lookup := func(string) (int, error) { return 9, nil }
	if err := undoLink("pt0", dial, lookup); err != nil {
		t.Fatal(err)
	}
	if got := fake.take(); !reflect.DeepEqual(got, []string{"RevertLink 9"}) {
		t.Fatalf("undo calls %q", got)
	}
	if err := undoLink("gone0", dial, func(string) (int, error) { return 0, errors.New("no such interface") }); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	fake.noLinks = true
	fake.mu.Unlock()
	if err := undoLink("pt0", dial, lookup); err != nil {
		t.Fatalf("NoSuchLink: %v", err)
	}
}

func TestAutoFallsBackToFileWhenResolvedSilent(t *testing.T) {
	dial := privateBus(t) // nobody owns org.freedesktop.resolve1
	m, fx := resolvedFixture(t, dial)
	done := make(chan error, 1)
	go func() { done <- m.Start() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * busTimeout):
		t.Fatal("Start hung on the bus")
	}
	defer m.Close()
	if m.Mode() != ModeFile {
		t.Fatalf("mode %q", m.Mode())
	}
	if !isOurs([]byte(mustRead(t, fx.path)), ourNS) {
		t.Fatal("file mode did not write ours")
	}
	// Without a bus at all, undo of a resolved link is success.
	noBus := func() (*dbus.Conn, error) { return dbus.Connect("unix:path=" + filepath.Join(fx.dir, "nobus")) }
	if err := undoLink("pt0", noBus, func(string) (int, error) { return 3, nil }); err != nil {
		t.Fatalf("no bus: %v", err)
	}
}
