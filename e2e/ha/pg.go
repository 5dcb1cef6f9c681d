package ha

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// postgres is a private PostgreSQL cluster (scripts/pg-start.sh), so the
// tests can freeze it without stopping anyone else's database.
type postgres struct {
	dsn, dir string
}

// moduleRoot is the directory of go.mod.
func moduleRoot(t testing.TB) string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		t.Fatalf("find the module root: %v", err)
	}
	return filepath.Dir(string(bytes.TrimSpace(out)))
}

// startPostgres starts the cluster; it skips the test where PostgreSQL
// cannot be had (not root and no server binaries), unless CI=true.
func startPostgres(t testing.TB) *postgres {
	t.Helper()
	script := filepath.Join(moduleRoot(t), "scripts", "pg-start.sh")
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(), "PG_PORT=25432")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if os.Getenv("CI") != "true" && os.Geteuid() != 0 {
			t.Skipf("no PostgreSQL for the HA rig (%v): %s", err, stderr.String())
		}
		t.Fatalf("start PostgreSQL: %v: %s", err, stderr.String())
	}
	pg := &postgres{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, "'\"")
		switch k {
		case "PETREL_TEST_POSTGRES_DSN":
			pg.dsn = v
		case "PETREL_TEST_POSTGRES_DIR":
			pg.dir = v
		}
	}
	if pg.dsn == "" || pg.dir == "" {
		t.Fatalf("pg-start.sh printed no DSN and directory: %q", out)
	}
	t.Cleanup(func() {
		pg.signal(syscall.SIGCONT) // never leave it frozen
		stop := exec.Command("bash", script, "stop", pg.dir)
		if out, err := stop.CombinedOutput(); err != nil {
			t.Logf("stop PostgreSQL: %v: %s", err, out)
		}
	})
	return pg
}

// pids are the postmaster and every backend it forked.
func (pg *postgres) pids() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(pg.dir, "data", "postmaster.pid"))
	if err != nil {
		return nil, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil, fmt.Errorf("postmaster.pid: %w", err)
	}
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(pm)).Output()
	pids := []int{pm}
	for _, f := range strings.Fields(string(out)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// signal sends sig to the whole cluster (SIGSTOP freezes it: connections
// are still accepted by the kernel, nothing answers).
func (pg *postgres) signal(sig syscall.Signal) error {
	pids, err := pg.pids()
	if err != nil {
		return err
	}
	for _, p := range pids {
		_ = syscall.Kill(p, sig)
	}
	return nil
}
