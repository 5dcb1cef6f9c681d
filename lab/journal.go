package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// journalProc identifies a process across PID reuse by its start time.
type journalProc struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// journalState is the on-disk record of one lab run.
type journalState struct {
	Prefix     string        `json:"prefix"`
	Owner      journalProc   `json:"owner"`
	Created    time.Time     `json:"created"`
	Namespaces []string      `json:"namespaces"`
	Procs      []journalProc `json:"procs"`
}

// journal persists a run's resources before they are created, so a crashed
// run can be cleaned by another process.
type journal struct {
	path    string
	mu      sync.Mutex
	st      journalState
	removed bool // after remove, writes are no-ops
}

func openJournal(dir, prefix string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create journal dir: %w", err)
	}
	self := os.Getpid()
	j := &journal{
		path: filepath.Join(dir, prefix+".json"),
		st: journalState{
			Prefix:  prefix,
			Owner:   journalProc{PID: self, Start: procStart(self)},
			Created: time.Now().UTC(),
		},
	}
	if _, err := os.Stat(j.path); err == nil {
		return nil, fmt.Errorf("open journal: %s exists", j.path)
	}
	return j, j.writeLocked()
}

func (j *journal) writeLocked() error {
	if j.removed {
		return nil
	}
	b, err := json.MarshalIndent(j.st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode journal: %w", err)
	}
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	return nil
}

func (j *journal) addNamespace(ns string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.st.Namespaces = append(j.st.Namespaces, ns)
	return j.writeLocked()
}

func (j *journal) addProc(pid int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.st.Procs = append(j.st.Procs, journalProc{PID: pid, Start: procStart(pid)})
	return j.writeLocked()
}

func (j *journal) removeProc(pid int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.st.Procs = slices.DeleteFunc(j.st.Procs, func(p journalProc) bool { return p.PID == pid })
	_ = j.writeLocked()
}

func (j *journal) snapshot() journalState {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := j.st
	st.Namespaces = slices.Clone(st.Namespaces)
	st.Procs = slices.Clone(st.Procs)
	return st
}

func (j *journal) namespaces() []string { return j.snapshot().Namespaces }

func (j *journal) remove() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.removed = true
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal: %w", err)
	}
	return nil
}

// procStart returns a process's start time in clock ticks since boot
// (field 22 of /proc/PID/stat), or 0 when the process does not exist.
func procStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces; fields after it are
	// counted from the closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// alive reports whether the recorded process still runs (same PID and
// start time).
func (p journalProc) alive() bool {
	s := procStart(p.PID)
	return s != 0 && (p.Start == 0 || s == p.Start)
}

func killIfSame(p journalProc) {
	if p.alive() {
		_ = killPID(p.PID)
	}
}

func killPID(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// waitGone polls until the processes have exited or d passed.
func waitGone(pids []int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		left := false
		for _, pid := range pids {
			if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
				// A zombie (state Z) is gone for our purposes.
				if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] != 'Z' {
					left = true
				}
			}
		}
		if !left {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CleanupStale removes the leftovers of lab runs whose owner process is no
// longer alive: everything their journals record, plus any namespace or
// /etc/netns directory carrying a lab prefix that no live run owns (a crash
// between creating a namespace and journaling cannot happen, because the
// journal is written first, but a deleted journal can). dir "" means
// DefaultJournalDir. It returns the namespaces it removed.
func CleanupStale(dir string, log *slog.Logger) ([]string, error) {
	return cleanup(dir, log, func(st journalState) bool { return !st.Owner.alive() })
}

// CleanupOwner removes every lab that process pid owns, alive or not. A test
// binary's signal handler calls it with os.Getpid() to tear down its labs.
func CleanupOwner(dir string, pid int, log *slog.Logger) ([]string, error) {
	return cleanup(dir, log, func(st journalState) bool { return st.Owner.PID == pid })
}

func cleanup(dir string, log *slog.Logger, doomed func(journalState) bool) ([]string, error) {
	if dir == "" {
		dir = DefaultJournalDir
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read journal dir: %w", err)
	}
	live := map[string]bool{}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var st journalState
		if err := json.Unmarshal(b, &st); err != nil || !prefixRE.MatchString(st.Prefix+"-") {
			log.Warn("skipping unreadable lab journal", "path", path, "err", err)
			continue
		}
		if !doomed(st) {
			live[st.Prefix] = true
			continue
		}
		log.Info("removing lab", "prefix", st.Prefix, "owner", st.Owner.PID)
		if err := teardown(st, log); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, st.Namespaces...)
		_ = os.Remove(path)
	}
	// Orphans: prefixed namespaces and /etc/netns dirs no live journal owns.
	orphans := map[string]bool{}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				orphans[f[0]] = true
			}
		}
	}
	if des, err := os.ReadDir("/etc/netns"); err == nil {
		for _, de := range des {
			orphans[de.Name()] = true
		}
	}
	for ns := range orphans {
		m := prefixRE.FindStringSubmatch(ns)
		if m == nil || live[m[1]] {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, m[1]+".json")); err == nil {
			continue // a journal appeared meanwhile: a run that just started
		}
		log.Info("removing orphan lab namespace", "ns", ns)
		if err := deleteNamespace(ns); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, ns)
	}
	slices.Sort(removed)
	return slices.Compact(removed), errors.Join(errs...)
}
