package service

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// execStart returns the ExecStart= value of a unit text.
func execStart(t *testing.T, unit string) string {
	t.Helper()
	for line := range strings.Lines(unit) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
			return v
		}
	}
	t.Fatalf("no ExecStart in\n%s", unit)
	return ""
}

func TestRenderCommandLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"default", DefaultConfig(), "/usr/bin/petrel daemon --state-dir /var/lib/petrel"},
		{"daemon flags", Config{Binary: "/opt/petrel/bin/petrel", StateDir: "/var/lib/petrel-b",
			Args: []string{"--netstack", "--socks5=127.0.0.1:1080"}},
			"/opt/petrel/bin/petrel daemon --state-dir /var/lib/petrel-b --netstack --socks5=127.0.0.1:1080"},
		{"quoted", Config{Binary: "/usr/bin/petrel", StateDir: "/var/lib/petrel",
			Args: []string{`--ca-file=/etc/my ca/"x".pem`, "--interface=50%$HOME", `a\b`, ""}},
			`/usr/bin/petrel daemon --state-dir /var/lib/petrel "--ca-file=/etc/my ca/\"x\".pem" "--interface=50%%$$HOME" "a\\b" ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unit, err := Render(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if got := execStart(t, unit); got != tc.want {
				t.Errorf("ExecStart=%s\nwant       %s", got, tc.want)
			}
		})
	}
}

func TestRenderStateDirectory(t *testing.T) {
	unit, err := Render(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nStateDirectory=petrel\n", "\nStateDirectoryMode=0700\n", "\nWantedBy=multi-user.target\n",
		"\nRestart=on-failure\n", "\nCapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE CAP_DAC_OVERRIDE CAP_CHOWN\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("default unit lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(unit, "ReadWritePaths=") {
		t.Error("default unit has ReadWritePaths=")
	}
	// Settings that would break the agent (see the unit's comments).
	for _, bad := range []string{"PrivateDevices=", "ProtectClock=", "ProtectKernelTunables=", "UMask=", "DeviceAllow=", "PrivateNetwork=", "DynamicUser="} {
		for line := range strings.Lines(unit) {
			if strings.HasPrefix(line, bad) {
				t.Errorf("unit sets %s", strings.TrimSpace(line))
			}
		}
	}
	home, err := Render(Config{Binary: "/usr/bin/petrel", StateDir: "/home/ops/petrel"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(home, "\nReadWritePaths=/home/ops/petrel\n") || strings.Contains(home, "StateDirectory=") {
		t.Errorf("state dir outside /var/lib: want ReadWritePaths= and no StateDirectory=:\n%s", home)
	}
}

func TestRenderRefusesBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Binary: "petrel", StateDir: "/var/lib/petrel"},
		{Binary: "/usr/bin/petrel", StateDir: ""},
		{Binary: "/usr/bin/petrel", StateDir: "/"},
		{Binary: "/usr/bin/petrel", StateDir: "/var/lib/../petrel"},
		{Binary: "/usr/bin/pet rel", StateDir: "/var/lib/petrel"},
		{Binary: "/usr/bin/petrel", StateDir: "/var/lib/pet%rel"},
		{Binary: "/usr/bin/petrel", StateDir: "/var/lib/petrel", Args: []string{"--interface=a\nExecStartPre=/bin/evil"}},
	} {
		if _, err := Render(c); err == nil {
			t.Errorf("Render(%+v) succeeded", c)
		}
	}
}

// The .deb ships the default unit; it must be what Render produces.
func TestPackagedUnitIsDefault(t *testing.T) {
	b, err := os.ReadFile("../../packaging/systemd/petrel.service")
	if err != nil {
		t.Fatal(err)
	}
	want, err := Render(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("packaging/systemd/petrel.service differs from Render(DefaultConfig()); regenerate it:\n%s", want)
	}
}

// TestUnitVerifies runs systemd-analyze verify on the unit as Install
// writes it, with quoted daemon flags, pointing at a binary that exists.
func TestUnitVerifies(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := Render(Config{Binary: exe, StateDir: "/var/lib/petrel-test",
		Args: []string{"--netstack", "--ca-file=/etc/my ca.pem", "--interface=50%$x"}})
	if err != nil {
		t.Fatal(err)
	}
	verify(t, Marker+"\n"+unit)
	home, err := Render(Config{Binary: exe, StateDir: "/root/petrel"})
	if err != nil {
		t.Fatal(err)
	}
	verify(t, home)
}

// verify fails the test when systemd-analyze verify rejects the unit or
// prints anything (it only warns, with exit status 0, about unknown keys
// and bad values).
func verify(t *testing.T, unit string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), UnitName)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, out, unit)
	}
}
