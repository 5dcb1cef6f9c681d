package stun

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// TestTurnutilsStunclient runs coturn's turnutils_stunclient (Debian package
// coturn; .ci/run installs it) against the server on loopback, from two
// source addresses, and checks that it prints the address it sent from as
// its reflexive address. Skipped only outside CI when the binary is missing.
func TestTurnutilsStunclient(t *testing.T) {
	bin, err := exec.LookPath("turnutils_stunclient")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("turnutils_stunclient missing in CI (Debian package coturn): %v", err)
		}
		t.Skip("turnutils_stunclient not installed (Debian package coturn)")
	}
	s := NewServer("127.0.0.1:0", nil)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	port := strconv.Itoa(s.Addr().(*net.UDPAddr).Port)
	// Without -L the client sends from 127.0.0.1 (the route to the server).
	for _, local := range []string{"", "127.0.0.2"} {
		args := []string{"-p", port}
		want := "127.0.0.1"
		if local != "" {
			args, want = append(args, "-L", local), local
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, bin, append(args, "127.0.0.1")...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("turnutils_stunclient %v: %v\n%s", args, err, out)
		}
		m := reflexive.FindSubmatch(out)
		if m == nil {
			t.Fatalf("turnutils_stunclient %v printed no reflexive address:\n%s", args, out)
		}
		if got := string(m[1]); got != want {
			t.Fatalf("turnutils_stunclient %v: reflexive address %s:%s, want %s:<port>\n%s", args, m[1], m[2], want, out)
		}
		if p, _ := strconv.Atoi(string(m[2])); p <= 0 || p > 65535 {
			t.Fatalf("bad reflexive port %s", m[2])
		}
	}
	if got := s.Stats().Answered; got != 2 {
		t.Fatalf("server answered %d requests, want 2", got)
	}
}

var reflexive = regexp.MustCompile(`UDP reflexive addr: ([0-9.]+):(\d+)`)
