package host

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// The lab test (resolvconf_lab_linux_test.go) re-executes the test binary
// inside `ip netns exec` with helperEnv set; TestMain then runs runHelper
// instead of the tests.
const (
	helperEnv        = "PETREL_DNSHOST_HELPER" // "start" or "undo"
	helperStateEnv   = "PETREL_DNSHOST_STATE"
	helperJournalEnv = "PETREL_DNSHOST_JOURNAL"
	helperNetnsEnv   = "PETREL_DNSHOST_NETNS"
	helperResolvConf = "/etc/resolv.conf"
)

func runHelper() int {
	// Only ever touch /etc/resolv.conf when it is the lab's file bind
	// mounted by ip netns exec (/etc/netns/NAME/resolv.conf), never the
	// machine's own (which in a container is a bind mount too).
	if err := checkLabResolvConf(os.Getenv(helperNetnsEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "helper: refusing:", err)
		return 3
	}
	journal := &testJournal{path: os.Getenv(helperJournalEnv)}
	switch os.Getenv(helperEnv) {
	case "start":
		m, err := New(Config{ResolvConf: helperResolvConf, StateDir: os.Getenv(helperStateEnv),
			Nameserver: netip.MustParseAddr("100.64.0.1"), Search: []string{"petrel.internal"}, Mode: ModeFile, Journal: journal})
		if err == nil {
			err = m.Start()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper start:", err)
			return 1
		}
		fmt.Println("started")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		if err := m.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "helper close:", err)
			return 1
		}
		return 0
	case "undo":
		if err := replayJournal(journal.path); err != nil {
			fmt.Fprintln(os.Stderr, "helper undo:", err)
			return 1
		}
		return 0
	}
	return 2
}

func checkLabResolvConf(netns string) error {
	if netns == "" || strings.ContainsAny(netns, "/.") {
		return fmt.Errorf("bad netns name %q", netns)
	}
	if ok, err := isMountPoint(helperResolvConf); err != nil || !ok {
		return fmt.Errorf("%s is not a mount point (%v)", helperResolvConf, err)
	}
	same := func(a, b string) bool {
		fa, err1 := os.Stat(a)
		fb, err2 := os.Stat(b)
		return err1 == nil && err2 == nil && os.SameFile(fa, fb)
	}
	if !same(helperResolvConf, "/etc/netns/"+netns+"/resolv.conf") {
		return fmt.Errorf("%s is not /etc/netns/%s/resolv.conf", helperResolvConf, netns)
	}
	if !same("/proc/self/ns/net", "/run/netns/"+netns) {
		return fmt.Errorf("not inside network namespace %s", netns)
	}
	return nil
}

// isMountPoint reports whether path is a mount point in this process's
// mount namespace (/proc/self/mountinfo field 5).
func isMountPoint(path string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 4 && fs[4] == path {
			return true, nil
		}
	}
	return false, sc.Err()
}

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	goleak.VerifyTestMain(m)
}

// testJournal is a JSON-lines journal file, like the daemon's.
type testJournal struct {
	mu   sync.Mutex
	path string
	fail error
}

type journalEntry struct {
	Kind string            `json:"kind"`
	Name string            `json:"name"`
	Data map[string]string `json:"data"`
}

func (j *testJournal) Record(kind, name string, data map[string]string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	b, err := json.Marshal(journalEntry{kind, name, data})
	if err != nil {
		return err
	}
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

func readJournal(path string) ([]journalEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []journalEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e journalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// replayJournal undoes the entries newest first with Undoers, as the
// daemon does after a crash.
func replayJournal(path string) error {
	entries, err := readJournal(path)
	if err != nil {
		return err
	}
	undo := Undoers()
	var errs []error
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		fn, ok := undo[e.Kind]
		if !ok {
			errs = append(errs, errors.New("no undoer for "+e.Kind))
			continue
		}
		errs = append(errs, fn(e.Name, e.Data))
	}
	return errors.Join(errs...)
}
