//go:build lab

package route

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// lab is a throwaway network namespace with a TUN "ptun0" (100.64.0.1/16,
// the overlay) and a veth "veth0" underlay (192.0.2.2/24 and
// 2001:db8:1::2/64, default routes via .1 and ::1).
type lab struct {
	t    *testing.T
	name string
	path string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("lab test needs root (network namespaces, TUN, nftables); run as root with -tags lab")
	}
	for _, bin := range []string{"ip", "nft", "sysctl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("lab test needs %s in PATH", bin)
		}
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	l := &lab{t: t, name: "petrel-rt-" + hex.EncodeToString(b[:])}
	l.path = "/run/netns/" + l.name
	l.host("ip", "netns", "add", l.name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.name).Run() })
	// No duplicate address detection: link-local addresses would otherwise
	// turn up (with their local routes) during the test and spoil snapshots.
	if out, err := l.exec("sysctl", "-w", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"); err != nil {
		t.Fatalf("sysctl accept_dad: %v\n%s", err, out)
	}
	for _, c := range []string{
		"link set lo up",
		"tuntap add dev ptun0 mode tun",
		"addr add 100.64.0.1/16 dev ptun0",
		"link set ptun0 up",
		"link add veth0 type veth peer name veth1",
		"link set veth1 up",
		"link set veth0 up",
		"addr add 192.0.2.2/24 dev veth0",
		"-6 addr add 2001:db8:1::2/64 dev veth0 nodad",
		"route add default via 192.0.2.1 dev veth0",
		"-6 route add default via 2001:db8:1::1 dev veth0",
	} {
		l.ip(strings.Fields(c)...)
	}
	eventually(t, "IPv6 addresses settled", func() bool {
		return strings.TrimSpace(l.ip("-6", "addr", "show", "tentative")) == ""
	})
	return l
}

func (l *lab) host(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ip runs "ip -n NS args".
func (l *lab) ip(args ...string) string {
	l.t.Helper()
	return l.host(append([]string{"ip", "-n", l.name}, args...)...)
}

// exec runs a command inside the namespace and returns its output and error.
func (l *lab) exec(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", l.name}, args...)...).CombinedOutput()
	return string(out), err
}

func (l *lab) nft() string {
	l.t.Helper()
	out, err := l.exec("nft", "list", "ruleset")
	if err != nil {
		l.t.Fatalf("nft list ruleset: %v\n%s", err, out)
	}
	return out
}

func (l *lab) sysctl(key string) string {
	l.t.Helper()
	out, err := l.exec("sysctl", "-n", key)
	if err != nil {
		l.t.Fatalf("sysctl %s: %v\n%s", key, err, out)
	}
	return strings.TrimSpace(out)
}

// routeGet returns "ip route get" output (or the error text) in the namespace.
func (l *lab) routeGet(args ...string) string {
	out, _ := exec.Command("ip", append([]string{"-n", l.name, "route", "get"}, args...)...).CombinedOutput()
	return string(out)
}

var snapshotSysctls = []string{sysctlForward4, sysctlForward6, sysctlSrcValidMrk, "net.ipv4.conf.all.rp_filter"}

// snapshot is everything this package may change, as text.
func (l *lab) snapshot() map[string]string {
	l.t.Helper()
	s := map[string]string{
		"ip rule":                    l.ip("rule"),
		"ip -6 rule":                 l.ip("-6", "rule"),
		"ip route show table all":    l.ip("route", "show", "table", "all"),
		"ip -6 route show table all": l.ip("-6", "route", "show", "table", "all"),
		"nft list ruleset":           l.nft(),
	}
	for _, k := range snapshotSysctls {
		s["sysctl "+k] = l.sysctl(k)
	}
	return s
}

func (l *lab) requireSnapshot(want map[string]string, when string) {
	l.t.Helper()
	got := l.snapshot()
	for k, w := range want {
		if got[k] != w {
			l.t.Errorf("%s: %s differs from the snapshot before Apply:\n--- got\n%s\n--- want\n%s", when, k, got[k], w)
		}
	}
}

// inNS runs fn on a thread in the namespace (for the stateless functions
// that work in the calling thread's namespace: Undoers, HostNetworks).
func (l *lab) inNS(fn func()) {
	l.t.Helper()
	ns, err := netns.GetFromPath(l.path)
	if err != nil {
		l.t.Fatalf("open netns: %v", err)
	}
	defer ns.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := netns.Set(ns); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		l.t.Fatalf("enter netns: %v", err)
	}
}

// manager returns a Manager working in the lab namespace with a fast drift
// check and a file-backed journal.
func (l *lab) manager() (*Manager, *fileJournal) {
	j := &fileJournal{path: filepath.Join(l.t.TempDir(), "journal")}
	log := slog.New(slog.NewTextHandler(testWriter{l.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m := newManager(log, j, func(o *options) {
		o.nsPath = l.path
		o.driftInterval = 100 * time.Millisecond
	})
	return m, j
}

// undoJournal replays the journal through Undoers in reverse order inside
// the namespace, as the daemon does after a crash.
func (l *lab) undoJournal(j *fileJournal) {
	l.t.Helper()
	entries := j.entries(l.t)
	undo := Undoers()
	var errs []string
	l.inNS(func() {
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			fn, ok := undo[e.Kind]
			if !ok {
				errs = append(errs, "no undoer for kind "+e.Kind)
				continue
			}
			if err := fn(e.Name, e.Data); err != nil {
				errs = append(errs, fmt.Sprintf("undo %s %q: %v", e.Kind, e.Name, err))
			}
		}
	})
	for _, e := range errs {
		l.t.Error(e)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// fileJournal is a JSON-lines journal, fsynced per entry like the daemon's.
type fileJournal struct {
	mu   sync.Mutex
	path string
}

type journalEntry struct {
	Kind string            `json:"kind"`
	Name string            `json:"name"`
	Data map[string]string `json:"data"`
}

func (j *fileJournal) Record(kind, name string, data map[string]string) error {
	b, err := json.Marshal(journalEntry{kind, name, data})
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return err
	}
	return f.Sync()
}

func (j *fileJournal) entries(t *testing.T) []journalEntry {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	b, err := os.ReadFile(j.path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []journalEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e journalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("journal line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}
