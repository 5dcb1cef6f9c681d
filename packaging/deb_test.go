package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// want is one path a package ships: its type ('-' file, 'd' directory),
// mode and owner in the archive, and its owner once postinst has run.
type want struct {
	pkg, path string
	typ       byte
	mode      os.FileMode
	installed string // owner:group after installation
}

// shipped is the independent statement of what the packages must hold;
// changing a definition in deb.go without changing this fails the tests.
var shipped = []want{
	{"petrel", "/usr/bin/petrel", '-', 0o755, "root:root"},
	{"petrel", "/lib/systemd/system/petrel.service", '-', 0o644, "root:root"},
	{"petrel", "/var/lib/petrel", 'd', 0o700, "root:root"},
	{"petrel-server", "/usr/bin/petrel-server", '-', 0o755, "root:root"},
	{"petrel-server", "/lib/systemd/system/petrel-server.service", '-', 0o644, "root:root"},
	{"petrel-server", "/etc/petrel/server.yaml", '-', 0o640, "root:petrel-server"},
	{"petrel-server", "/var/lib/petrel-server", 'd', 0o750, "petrel-server:petrel-server"},
}

// conffiles are the conffiles of each package.
var conffiles = map[string][]string{"petrel": nil, "petrel-server": {"/etc/petrel/server.yaml"}}

func shippedBy(pkg string) []want {
	var ws []want
	for _, w := range shipped {
		if w.pkg == pkg {
			ws = append(ws, w)
		}
	}
	return ws
}

func TestDebVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", DevVersion},
		{"v1.2.3-0-gabc1234", "1.2.3"},
		{"v1.2.3-5-gabc1234", "1.2.3+git5.gabc1234"},
		{"v1.2.3-rc1-0-gabc1234", "1.2.3~rc1"},
		{"v1.2.3-rc.1-2-gabc1234", "1.2.3~rc.1+git2.gabc1234"},
		{"v1.2.3-0-gabc1234-dirty", "1.2.3+dirty"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+git4.gabc1234.dirty"},
	} {
		got, err := DebVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("DebVersion(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"abc1234", "1.2.3", "v1.2-0-gabc", "v1.2.3", "v1.2.3-0-gabc\n-x"} {
		if got, err := DebVersion(bad); err == nil {
			t.Errorf("DebVersion(%q) = %q, want an error", bad, got)
		}
	}
	// dpkg must agree on the order.
	order := []string{"0.0.0~dev", "1.2.3~rc1", "1.2.3~rc1+git2.gabc", "1.2.3", "1.2.3+dirty", "1.2.3+git4.gabc", "1.2.4~rc1"}
	for i := 1; i < len(order); i++ {
		if err := exec.Command("dpkg", "--compare-versions", order[i-1], "lt", order[i]).Run(); err != nil {
			t.Errorf("dpkg: %s is not before %s: %v", order[i-1], order[i], err)
		}
	}
}

// buildFake builds both packages from stand-in binaries into a temporary
// directory and returns the paths by package name.
func buildFake(t *testing.T) map[string]string {
	t.Helper()
	bin := t.TempDir()
	for _, b := range []string{"petrel", "petrel-server"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\necho "+b+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	in := Inputs{Version: "1.2.3+git4.gabc", Arch: "amd64", BinDir: bin, SrcDir: ".",
		MTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	out := t.TempDir()
	debs := map[string]string{}
	for _, def := range []func(Inputs) *Info{Agent, Server} {
		info := def(in)
		path, err := Build(info, out)
		if err != nil {
			t.Fatal(err)
		}
		debs[info.Name] = path
	}
	return debs
}

// debEntry is one line of `dpkg-deb --contents`.
type debEntry struct {
	typ   byte
	mode  string // e.g. rwxr-xr-x
	owner string
}

func debContents(t *testing.T, deb string) map[string]debEntry {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --contents %s: %v", deb, err)
	}
	m := map[string]debEntry{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb line %q", line)
		}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if path == "" {
			path = "/"
		}
		m[path] = debEntry{typ: f[0][0], mode: f[0][1:], owner: strings.Replace(f[1], "/", ":", 1)}
	}
	return m
}

func TestPackageContents(t *testing.T) {
	debs := buildFake(t)
	for pkg, deb := range debs {
		got := debContents(t, deb)
		for _, w := range shippedBy(pkg) {
			e, ok := got[w.path]
			if !ok {
				t.Errorf("%s: %s missing", pkg, w.path)
				continue
			}
			if e.typ != w.typ || e.mode != (w.mode & 0o777).String()[1:] || e.owner != "root:root" {
				t.Errorf("%s: %s is %c%s %s, want %c%s root:root", pkg, w.path, e.typ, e.mode, e.owner, w.typ, (w.mode & 0o777).String()[1:])
			}
			delete(got, w.path)
		}
		// Everything else is a parent directory, 0755 root.
		for path, e := range got {
			if e.typ != 'd' || e.mode != "rwxr-xr-x" || e.owner != "root:root" {
				t.Errorf("%s: unexpected %c%s %s %s", pkg, e.typ, e.mode, e.owner, path)
			}
		}
		checkControl(t, pkg, deb)
	}
}

// checkControl checks the control fields, the conffiles and that the
// maintainer scripts are the ones in debian/PKG, executable.
func checkControl(t *testing.T, pkg, deb string) {
	t.Helper()
	ctrl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--control", deb, ctrl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
	}
	control, err := os.ReadFile(filepath.Join(ctrl, "control"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Package: " + pkg, "Version: 1.2.3+git4.gabc", "Architecture: amd64", "Section: net"} {
		if !slices.Contains(strings.Split(string(control), "\n"), f) {
			t.Errorf("%s control lacks %q:\n%s", pkg, f, control)
		}
	}
	// Both postinsts call adduser/addgroup (the server's user, the agent's
	// operator group).
	if !strings.Contains(string(control), "\nDepends: adduser\n") {
		t.Errorf("%s does not depend on adduser:\n%s", pkg, control)
	}
	var gotConf []string
	if b, err := os.ReadFile(filepath.Join(ctrl, "conffiles")); err == nil {
		gotConf = strings.Fields(string(b))
	}
	if !slices.Equal(gotConf, conffiles[pkg]) {
		t.Errorf("%s conffiles %q, want %q", pkg, gotConf, conffiles[pkg])
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		got, err := os.ReadFile(filepath.Join(ctrl, s))
		if err != nil {
			t.Errorf("%s: no %s: %v", pkg, s, err)
			continue
		}
		src, err := os.ReadFile(filepath.Join("debian", pkg, s))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(src) {
			t.Errorf("%s: %s differs from debian/%s/%s", pkg, s, pkg, s)
		}
		if fi, err := os.Stat(filepath.Join(ctrl, s)); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s: %s not executable: %v", pkg, s, err)
		}
	}
}

// TestMaintainerScriptsParse runs each maintainer script through the
// shell's parser (dash is /bin/sh on Debian).
func TestMaintainerScriptsParse(t *testing.T) {
	scripts, err := filepath.Glob("debian/*/*")
	if err != nil || len(scripts) != 6 {
		t.Fatalf("scripts %q, %v", scripts, err)
	}
	for _, s := range scripts {
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", s, err, out)
		}
	}
}

// TestUnitsVerify runs systemd-analyze verify on both units in a root
// that holds the system's units and stand-ins for the binaries (verify
// checks that ExecStart's program exists).
func TestUnitsVerify(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/lib/systemd", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy system units: %v\n%s", err, out)
	}
	if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"petrel", "petrel-server"} {
		if err := os.WriteFile(filepath.Join(root, "usr/bin", b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		unit, err := os.ReadFile(filepath.Join("systemd", b+".service"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "usr/lib/systemd/system", b+".service"), unit, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	verifyUnits(t, []string{"systemd-analyze", "verify", "--man=no", "--root=" + root}, "petrel.service", "petrel-server.service")
}

// verifyUnits runs the verify command line on the units; it fails on an
// error and on any output, since verify only warns (exit status 0) about
// unknown keys and unparsable values.
func verifyUnits(t *testing.T, argv []string, units ...string) {
	t.Helper()
	for _, u := range units {
		out, err := exec.Command(argv[0], append(argv[1:], u)...).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("%s %s: %v\n%s", strings.Join(argv, " "), u, err, out)
		}
	}
}
