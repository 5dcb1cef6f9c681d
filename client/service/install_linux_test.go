//go:build linux

package service

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeSystemctl records calls; failOn makes the call with that first
// argument fail.
type fakeSystemctl struct {
	booted bool
	calls  []string
	failOn string
	active bool // answer to is-active
}

func (f *fakeSystemctl) Booted() (bool, string) { return f.booted, "/run/systemd/system" }

func (f *fakeSystemctl) Run(args ...string) error {
	f.calls = append(f.calls, strings.Join(args, " "))
	if args[0] == f.failOn || (args[0] == "is-active" && !f.active) {
		return errors.New("systemctl " + args[0] + " failed")
	}
	return nil
}

func testOptions(t *testing.T) Options {
	t.Helper()
	return Options{
		Unit:    Config{Binary: "/usr/bin/petrel", StateDir: "/var/lib/petrel", Args: []string{"--netstack"}},
		UnitDir: t.TempDir(),
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInstallNoStartAndReinstall(t *testing.T) {
	o := testOptions(t)
	o.NoStart = true
	o.Systemctl = &fakeSystemctl{} // not booted: NoStart needs no systemd
	res, err := Install(o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(o.UnitDir, UnitName)
	if res.Path != path || res.Action != Created || res.Started {
		t.Fatalf("first install: %+v", res)
	}
	text := readFile(t, path)
	if !strings.HasPrefix(text, Marker+"\n") || execStart(t, text) != "/usr/bin/petrel daemon --state-dir /var/lib/petrel --netstack" {
		t.Fatalf("unit:\n%s", text)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("unit mode: %v %v", fi.Mode(), err)
	}
	// Idempotent: same config, same file, nothing rewritten.
	before, _ := os.Stat(path)
	res, err = Install(o)
	if err != nil || res.Action != Unchanged {
		t.Fatalf("re-install: %+v %v", res, err)
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Error("re-install rewrote an unchanged unit")
	}
	// Other flags: rewritten.
	o.Unit.Args = nil
	if res, err = Install(o); err != nil || res.Action != Updated {
		t.Fatalf("install with other flags: %+v %v", res, err)
	}
	if got := execStart(t, readFile(t, path)); got != "/usr/bin/petrel daemon --state-dir /var/lib/petrel" {
		t.Errorf("updated ExecStart=%s", got)
	}
	res, err = Uninstall(o)
	if err != nil || res.Action != Removed {
		t.Fatalf("uninstall: %+v %v", res, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unit still there: %v", err)
	}
	if res, err = Uninstall(o); err != nil || res.Action != Absent {
		t.Fatalf("second uninstall: %+v %v", res, err)
	}
}

func TestInstallStartsService(t *testing.T) {
	o := testOptions(t)
	sc := &fakeSystemctl{booted: true}
	o.Systemctl = sc
	o.DaemonRunning = func() bool { return false }
	res, err := Install(o)
	if err != nil || !res.Started || res.Action != Created {
		t.Fatalf("install: %+v %v", res, err)
	}
	want := []string{"daemon-reload", "enable petrel.service", "restart petrel.service"}
	if !slices.Equal(sc.calls, want) {
		t.Errorf("calls %q, want %q", sc.calls, want)
	}
	sc.calls = nil
	if res, err = Install(o); err != nil || res.Action != Unchanged {
		t.Fatalf("re-install: %+v %v", res, err)
	}
	if want := []string{"enable --now petrel.service"}; !slices.Equal(sc.calls, want) {
		t.Errorf("re-install calls %q, want %q", sc.calls, want)
	}
	sc.calls = nil
	if res, err = Uninstall(o); err != nil || res.Action != Removed {
		t.Fatalf("uninstall: %+v %v", res, err)
	}
	if want := []string{"disable --now petrel.service", "daemon-reload"}; !slices.Equal(sc.calls, want) {
		t.Errorf("uninstall calls %q, want %q", sc.calls, want)
	}
}

// On a host without a running systemd nothing is written or removed, and
// the error says why. The host check itself is exercised with a runDir
// that does not exist.
func TestNoSystemd(t *testing.T) {
	o := testOptions(t)
	o.Systemctl = hostSystemctl{runDir: filepath.Join(t.TempDir(), "run-systemd-system")}
	_, err := Install(o)
	if !errors.Is(err, ErrNoSystemd) || !strings.Contains(err.Error(), "systemd is not running on this host") ||
		!strings.Contains(err.Error(), "run-systemd-system does not exist") {
		t.Fatalf("install error: %v", err)
	}
	if ents, _ := os.ReadDir(o.UnitDir); len(ents) != 0 {
		t.Fatalf("unit dir not empty after refused install: %v", ents)
	}
	// An installed unit (written with --no-start) is not removed either.
	o.NoStart = true
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	o.NoStart = false
	if _, err := Uninstall(o); !errors.Is(err, ErrNoSystemd) {
		t.Fatalf("uninstall error: %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.UnitDir, UnitName)); err != nil {
		t.Fatalf("refused uninstall removed the unit: %v", err)
	}
}

func TestForeignUnitNeedsForce(t *testing.T) {
	o := testOptions(t)
	o.NoStart = true
	path := filepath.Join(o.UnitDir, UnitName)
	const foreign = "[Service]\nExecStart=/usr/local/bin/other\n"
	if err := os.WriteFile(path, []byte(foreign), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(o); !errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("install over a foreign unit: %v", err)
	}
	if _, err := Uninstall(o); !errors.Is(err, ErrForeign) {
		t.Fatalf("uninstall of a foreign unit: %v", err)
	}
	if got := readFile(t, path); got != foreign {
		t.Fatalf("foreign unit changed:\n%s", got)
	}
	o.Force = true
	if res, err := Install(o); err != nil || res.Action != Updated || !ours(readFile(t, path)) {
		t.Fatalf("forced install: %+v %v", res, err)
	}
}

func TestDaemonAlreadyRunning(t *testing.T) {
	o := testOptions(t)
	sc := &fakeSystemctl{booted: true}
	o.Systemctl = sc
	o.DaemonRunning = func() bool { return true }
	if _, err := Install(o); !errors.Is(err, ErrDaemonRunning) || !strings.Contains(err.Error(), "petrel down") {
		t.Fatalf("install beside a detached daemon: %v", err)
	}
	if ents, _ := os.ReadDir(o.UnitDir); len(ents) != 0 {
		t.Fatalf("unit written: %v", ents)
	}
	// The daemon is systemd's own: a re-install goes ahead.
	sc.active = true
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
}

func TestFailedStartRollsBack(t *testing.T) {
	o := testOptions(t)
	sc := &fakeSystemctl{booted: true, failOn: "restart"}
	o.Systemctl = sc
	path := filepath.Join(o.UnitDir, UnitName)
	if _, err := Install(o); err == nil || !strings.Contains(err.Error(), "removed again") {
		t.Fatalf("install with failing restart: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("new unit left behind: %v", err)
	}
	if !slices.Contains(sc.calls, "disable --now petrel.service") {
		t.Errorf("rollback did not disable: %q", sc.calls)
	}
	// An update that fails to start puts the old unit back.
	sc.failOn = ""
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	old := readFile(t, path)
	sc.failOn = "restart"
	o.Unit.Args = []string{"--mtu=1400"}
	if _, err := Install(o); err == nil || !strings.Contains(err.Error(), "put back") {
		t.Fatalf("update with failing restart: %v", err)
	}
	if got := readFile(t, path); got != old {
		t.Fatalf("old unit not restored:\n%s", got)
	}
}

func TestInstallCreatesStateDirOutsideVarLib(t *testing.T) {
	o := testOptions(t)
	o.NoStart = true
	o.Unit.StateDir = filepath.Join(t.TempDir(), "state")
	if _, err := Install(o); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(o.Unit.StateDir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", fi, err)
	}
}
