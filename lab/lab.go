package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Fixed addressing of every lab. The "internet" is TEST-NET-3.
var (
	// InternetPrefix is the subnet of the internet bridge.
	InternetPrefix = netip.MustParsePrefix("203.0.113.0/24")
	// InternetGateway is the bridge's own address; every bridge host and NAT
	// router has its default route through it (it forwards nothing).
	InternetGateway = netip.MustParseAddr("203.0.113.1")
	// DNSAddr is where the lab DNS server listens; every host's resolv.conf
	// names it.
	DNSAddr = netip.MustParseAddr("203.0.113.53")
)

// DefaultJournalDir holds one journal file per live lab.
const DefaultJournalDir = "/run/petrel-lab"

// prefixRE matches lab prefixes ("pl" + 4 hex) at the start of a name.
var prefixRE = regexp.MustCompile(`^(pl[0-9a-f]{4})-`)

// ErrNotSupported is returned by New when the machine cannot run a lab
// (not root, or `ip netns` does not work). Tests skip on it.
var ErrNotSupported = errors.New("lab not supported here")

// Options configure a Lab. The zero value is usable.
type Options struct {
	// Logger receives progress at debug level; nil discards.
	Logger *slog.Logger
	// JournalDir overrides DefaultJournalDir. Every lab on a machine must
	// use the same directory: CleanupStale treats prefixed namespaces
	// without a journal in its directory as orphans.
	JournalDir string
	// LogDir, when set, receives one <host>-<argv0>-<n>.log file per
	// process started with Host.Start (stdout and stderr).
	LogDir string
}

// Lab is one run's set of namespaces. Create it with New and always Close it.
type Lab struct {
	log     *slog.Logger
	prefix  string
	logDir  string
	journal *journal

	mu        sync.Mutex
	closed    bool
	inet      *Host // the bridge namespace, nil until AddInternet
	hosts     map[string]*Host
	procs     map[*Proc]struct{}
	nextLAN   int // next 192.168.N.0/24 for NAT hosts
	nextPort  int // next bridge port index
	bridgeIPs map[netip.Addr]bool
	dns       *DNS
	seq       int
}

// New checks that the machine can run a lab (root, working `ip netns`),
// picks a run-unique prefix and opens the journal. It creates no namespace.
func New(opts Options) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root (running as uid %d)", ErrNotSupported, os.Geteuid())
	}
	for _, tool := range []string{"ip", "nft", "tc", "conntrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w: %s not installed (apt-get install nftables iproute2 conntrack)", ErrNotSupported, tool)
		}
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%w: ip netns list: %v: %s", ErrNotSupported, err, bytes.TrimSpace(out))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dir := opts.JournalDir
	if dir == "" {
		dir = DefaultJournalDir
	}
	var prefix string
	var j *journal
	for attempt := 0; ; attempt++ {
		var b [2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("pick prefix: %w", err)
		}
		prefix = "pl" + hex.EncodeToString(b[:])
		if prefixInUse(prefix) && attempt < 20 {
			continue
		}
		var err error
		if j, err = openJournal(dir, prefix); err == nil {
			break
		} else if attempt >= 20 {
			return nil, err
		}
	}
	l := &Lab{
		log:       log.With("component", "lab", "prefix", prefix),
		prefix:    prefix,
		logDir:    opts.LogDir,
		journal:   j,
		hosts:     make(map[string]*Host),
		procs:     make(map[*Proc]struct{}),
		bridgeIPs: make(map[netip.Addr]bool),
		nextLAN:   1,
	}
	l.log.Debug("lab opened", "journal", j.path)
	return l, nil
}

// Prefix returns the run-unique prefix carried by every namespace.
func (l *Lab) Prefix() string { return l.prefix }

// Host returns a host by the name it was added with, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// Namespaces lists the names of the namespaces this lab created.
func (l *Lab) Namespaces() []string { return l.journal.namespaces() }

// Close stops every process the lab started, closes the lab DNS server and
// removes every namespace (with all links in it) and /etc/netns directory,
// then the journal. It is idempotent and safe to call from t.Cleanup and a
// signal handler.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := make([]*Proc, 0, len(l.procs))
	for p := range l.procs {
		procs = append(procs, p)
	}
	dns := l.dns
	hosts := make([]*Host, 0, len(l.hosts))
	for _, h := range l.hosts {
		hosts = append(hosts, h)
	}
	l.mu.Unlock()
	for _, h := range hosts {
		h.closeImpairments()
	}

	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Stop() }()
	}
	wg.Wait()
	if dns != nil {
		dns.close()
	}
	err := teardown(l.journal.snapshot(), l.log)
	if err == nil {
		err = l.journal.remove()
	}
	l.log.Debug("lab closed", "err", err)
	return err
}

// prefixInUse reports whether a namespace or /etc/netns entry already
// carries prefix (a leftover not yet cleaned, or another run).
func prefixInUse(prefix string) bool {
	if m, _ := filepath.Glob(filepath.Join("/run/netns", prefix+"-*")); len(m) > 0 {
		return true
	}
	m, _ := filepath.Glob(filepath.Join("/etc/netns", prefix+"-*"))
	return len(m) > 0
}

// teardown removes what a journal records: processes in its namespaces,
// the namespaces and their /etc/netns directories.
func teardown(st journalState, log *slog.Logger) error {
	var errs []error
	for _, p := range st.Procs {
		killIfSame(p)
	}
	for i := len(st.Namespaces) - 1; i >= 0; i-- {
		ns := st.Namespaces[i]
		if err := deleteNamespace(ns); err != nil {
			errs = append(errs, err)
		}
		log.Debug("namespace removed", "ns", ns)
	}
	return errors.Join(errs...)
}

// deleteNamespace kills every process in ns, deletes it and its /etc/netns
// directory. A namespace that is already gone is not an error.
func deleteNamespace(ns string) error {
	if !validNSName(ns) {
		return fmt.Errorf("delete namespace %q: not a lab name", ns)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
		for range 3 {
			pids := nsPIDs(ns)
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = killPID(pid)
			}
			waitGone(pids, 5*time.Second)
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			return fmt.Errorf("delete namespace %s: %v: %s", ns, err, bytes.TrimSpace(out))
		}
	}
	if err := os.RemoveAll(filepath.Join("/etc/netns", ns)); err != nil {
		return fmt.Errorf("remove /etc/netns/%s: %w", ns, err)
	}
	return nil
}

func validNSName(ns string) bool { return prefixRE.MatchString(ns) && !strings.ContainsAny(ns, "/. ") }

// nsPIDs lists processes inside a namespace.
func nsPIDs(ns string) []int {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// run executes a tool in the machine's namespace and returns its output.
func run(ctx context.Context, stdin string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// nsRun executes a tool inside namespace ns.
func nsRun(ctx context.Context, ns, stdin string, argv ...string) (string, error) {
	return run(ctx, stdin, append([]string{"ip", "netns", "exec", ns}, argv...)...)
}

// nsName composes a namespace name from the prefix and a role.
func (l *Lab) nsName(role string) string { return l.prefix + "-" + role }

// checkName validates a user-given host name.
var hostNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,15}$`)

func (l *Lab) reserve(name string) error {
	if !hostNameRE.MatchString(name) {
		return fmt.Errorf("host name %q: want [a-z0-9-], at most 16 characters", name)
	}
	if l.closed {
		return errors.New("lab closed")
	}
	if _, ok := l.hosts[name]; ok {
		return fmt.Errorf("host %q exists", name)
	}
	return nil
}
