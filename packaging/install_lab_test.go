//go:build lab

package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The install check. The packages are built by scripts/package.sh (what
// `make package` runs) and installed with dpkg -i into a throwaway root:
// a copy-on-write overlay of this machine's root file system, entered
// with chroot in a private mount namespace. The maintainer scripts run
// for real there (adduser, dpkg-statoverride, systemctl enable), with
// this machine's dpkg database as the starting state, and without a
// running systemd, as in a container or image build. Nothing reaches the
// host: the overlay's upper layer is a tmpfs that vanishes with the
// namespace.

const childEnv = "PETREL_DEB_ROOT_CHILD" // set in the child: the .deb directory

func TestInstallDebs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the install check needs root (mount namespace, overlayfs, chroot, dpkg); run it through scripts/lab.sh or scripts/test.sh as root")
	}
	if dir := os.Getenv(childEnv); dir != "" {
		installChecks(t, dir)
		return
	}
	debs := t.TempDir()
	cmd := exec.Command("bash", "../scripts/package.sh", debs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package.sh: %v\n%s", err, out)
	}
	// The child runs the checks in its own mount namespace, so every
	// mount is gone when it exits, whatever happens.
	child := exec.Command("unshare", "--mount", "--propagation", "private",
		os.Args[0], "-test.run", "^TestInstallDebs$", "-test.count", "1", "-test.v")
	child.Env = append(os.Environ(), childEnv+"="+debs)
	out, err := child.CombinedOutput()
	t.Logf("throwaway root:\n%s", out)
	if err != nil {
		t.Fatalf("install checks failed: %v", err)
	}
}

// troot is the throwaway root.
type troot struct {
	t    *testing.T
	path string
}

// newRoot mounts a tmpfs-backed overlay of / with its own /proc, /tmp,
// /run (no /run/systemd/system: systemd is not running there) and a /dev
// of its own holding only the basic nodes. No host directory is mounted
// into it (a recursive delete through a bind mount of /dev would reach the
// host's), and base is removed with os.Remove only, after the unmount:
// never recursively.
func newRoot(t *testing.T) *troot {
	t.Helper()
	base, err := os.MkdirTemp("", "petrel-debroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := exec.Command("umount", "--recursive", base).Run(); err != nil {
			_ = exec.Command("umount", "--recursive", "--lazy", base).Run()
		}
		_ = os.Remove(base)
	})
	mustRun(t, "mount", "-t", "tmpfs", "tmpfs", base)
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := &troot{t: t, path: filepath.Join(base, "root")}
	mustRun(t, "mount", "-t", "overlay", "overlay", "-o",
		fmt.Sprintf("lowerdir=/,upperdir=%s/upper,workdir=%s/work", base, base), r.path)
	mustRun(t, "mount", "-t", "proc", "proc", r.file("/proc"))
	for _, d := range []string{"/tmp", "/run", "/dev"} {
		mustRun(t, "mount", "-t", "tmpfs", "tmpfs", r.file(d))
	}
	for name, minor := range map[string]uint32{"null": 3, "zero": 5, "full": 7, "random": 8, "urandom": 9} {
		if err := unix.Mknod(r.file("/dev/"+name), unix.S_IFCHR|0o666, int(unix.Mkdev(1, minor))); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(r.file("/dev/"+name), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, r.file("/dev/"+name)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func mustRun(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// file is the host path of a path inside the root.
func (r *troot) file(p string) string { return filepath.Join(r.path, p) }

// run runs argv inside the root and returns its output; a failure fails
// the test.
func (r *troot) run(argv ...string) string {
	r.t.Helper()
	out, err := r.try(argv...)
	if err != nil {
		r.t.Fatalf("in root: %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

func (r *troot) try(argv ...string) (string, error) {
	cmd := exec.Command("chroot", append([]string{r.path}, argv...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (r *troot) exists(p string) bool {
	_, err := os.Lstat(r.file(p))
	return err == nil
}

func installChecks(t *testing.T, dir string) {
	debs, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil || len(debs) != 2 {
		t.Fatalf("packages in %s: %q %v", dir, debs, err)
	}
	r := newRoot(t)
	var inRoot []string
	for _, d := range debs {
		dst := "/tmp/" + filepath.Base(d)
		mustRun(t, "cp", d, r.file(dst))
		inRoot = append(inRoot, dst)
	}
	if r.exists("/run/systemd/system") {
		t.Fatal("the throwaway root has /run/systemd/system")
	}
	t.Log(r.run(append([]string{"dpkg", "--install"}, inRoot...)...))

	checkInstalled(t, r)
	checkUser(t, r)
	checkServiceState(t, r)
	verifyUnits(t, []string{"chroot", r.path, "systemd-analyze", "verify", "--man=no"},
		"/lib/systemd/system/petrel.service", "/lib/systemd/system/petrel-server.service")
	if out := r.run("petrel", "--version"); !strings.Contains(out, r.run("dpkg-query", "-W", "-f=${Version}", "petrel")) {
		t.Errorf("petrel --version %q does not name the package version", out)
	}
	r.run("petrel-server", "config", "check", "/etc/petrel/server.yaml")

	// Reinstall (the upgrade path): an edited conffile and the owners stay.
	edited := "# edited by the admin\n" + r.run("cat", "/etc/petrel/server.yaml")
	if err := os.WriteFile(r.file("/etc/petrel/server.yaml"), []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	r.run(append([]string{"dpkg", "--install"}, inRoot...)...)
	if got := r.run("cat", "/etc/petrel/server.yaml"); got != edited {
		t.Error("reinstall replaced the edited /etc/petrel/server.yaml")
	}
	checkInstalled(t, r)

	// Remove keeps the conffile and the state, purge removes everything.
	state := []string{"/var/lib/petrel/wg.key", "/var/lib/petrel-server/petrel.db"}
	for _, p := range state {
		if err := os.WriteFile(r.file(p), []byte("state\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.run("dpkg", "--remove", "petrel", "petrel-server")
	for _, p := range state {
		if !r.exists(p) {
			t.Errorf("dpkg --remove deleted %s", p)
		}
	}
	for _, p := range []string{"/usr/bin/petrel", "/usr/bin/petrel-server", "/lib/systemd/system/petrel.service",
		"/lib/systemd/system/petrel-server.service", "/etc/systemd/system/multi-user.target.wants/petrel.service"} {
		if r.exists(p) {
			t.Errorf("%s still there after dpkg --remove", p)
		}
	}
	if !r.exists("/etc/petrel/server.yaml") {
		t.Error("dpkg --remove deleted the conffile")
	}
	r.run("dpkg", "--purge", "petrel", "petrel-server")
	for _, p := range []string{"/etc/petrel/server.yaml", "/var/lib/petrel", "/var/lib/petrel-server"} {
		if r.exists(p) {
			t.Errorf("%s still there after dpkg --purge", p)
		}
	}
	if out := r.run("dpkg-statoverride", "--list"); strings.Contains(out, "petrel") {
		t.Errorf("stat overrides left after purge:\n%s", out)
	}
	for _, pkg := range []string{"petrel", "petrel-server"} {
		if out, err := r.try("dpkg-query", "-W", "-f=${db:Status-Status}", pkg); err == nil && out != "not-installed" {
			t.Errorf("%s after purge: %q", pkg, out)
		}
	}
}

// checkInstalled checks every shipped path's type, mode and owner, the
// package database's file lists, status and conffiles.
func checkInstalled(t *testing.T, r *troot) {
	t.Helper()
	for _, w := range shipped {
		got := strings.TrimSpace(r.run("stat", "-L", "-c", "%A %U:%G", w.path))
		typ := "-"
		if w.typ == 'd' {
			typ = "d"
		}
		if want := typ + (w.mode & 0o777).String()[1:] + " " + w.installed; got != want {
			t.Errorf("%s: %s, want %s", w.path, got, want)
		}
	}
	for pkg, confs := range conffiles {
		if st := r.run("dpkg-query", "-W", "-f=${db:Status-Abbrev}", pkg); strings.TrimSpace(st) != "ii" {
			t.Errorf("%s status %q, want ii", pkg, st)
		}
		list := strings.Split(r.run("dpkg", "--listfiles", pkg), "\n")
		for _, w := range shippedBy(pkg) {
			if !slices.Contains(list, w.path) {
				t.Errorf("dpkg --listfiles %s lacks %s", pkg, w.path)
			}
		}
		reg := r.run("dpkg-query", "-W", "-f=${Conffiles}", pkg)
		for _, c := range confs {
			if !strings.Contains(reg, " "+c+" ") {
				t.Errorf("%s: conffile %s not registered: %q", pkg, c, reg)
			}
		}
	}
}

// checkUser checks the system user postinst made and the stat overrides
// that keep its owners across upgrades.
func checkUser(t *testing.T, r *troot) {
	t.Helper()
	f := strings.Split(strings.TrimSpace(r.run("getent", "passwd", "petrel-server")), ":")
	if len(f) != 7 || f[5] != "/var/lib/petrel-server" || !strings.HasSuffix(f[6], "nologin") {
		t.Errorf("user petrel-server: %q", f)
	}
	if uid, err := strconv.Atoi(strings.TrimSpace(r.run("id", "-u", "petrel-server"))); err != nil || uid >= 1000 {
		t.Errorf("petrel-server uid %d (%v) is not a system uid", uid, err)
	}
	r.run("getent", "group", "petrel-server")
	// The agent's operator group (members run petrel status without sudo).
	if gid, err := strconv.Atoi(strings.Split(strings.TrimSpace(r.run("getent", "group", "petrel")), ":")[2]); err != nil || gid >= 1000 {
		t.Errorf("group petrel: gid %d (%v) is not a system gid", gid, err)
	}
	over := r.run("dpkg-statoverride", "--list")
	for _, want := range []string{"petrel-server petrel-server 750 /var/lib/petrel-server", "root petrel-server 640 /etc/petrel/server.yaml"} {
		if !strings.Contains(over, want) {
			t.Errorf("stat override %q missing:\n%s", want, over)
		}
	}
}

// checkServiceState: the agent's unit is enabled on first install, the
// server's is not (its config must be edited first).
func checkServiceState(t *testing.T, r *troot) {
	t.Helper()
	if got := strings.TrimSpace(r.run("readlink", "/etc/systemd/system/multi-user.target.wants/petrel.service")); got != "/lib/systemd/system/petrel.service" {
		t.Errorf("petrel.service enable link -> %q", got)
	}
	if r.exists("/etc/systemd/system/multi-user.target.wants/petrel-server.service") {
		t.Error("petrel-server.service enabled on install")
	}
}
