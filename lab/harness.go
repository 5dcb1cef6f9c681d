package lab

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// TB is the part of testing.TB that NewT needs.
type TB interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
}

// NewT creates a lab for a test: it skips the test with a clear message
// when the machine cannot run labs (not root, no `ip netns`), and closes
// the lab in t.Cleanup (after the test, pass or fail).
func NewT(t TB, opts Options) *Lab {
	t.Helper()
	l, err := New(opts)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("lab test skipped: %v", err)
	}
	if err != nil {
		t.Fatalf("new lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Logf("close lab %s: %v", l.Prefix(), err)
		}
	})
	return l
}

// TeardownOnSignal makes SIGINT and SIGTERM remove every lab this process
// owns (by journal) and exit with status 130 / 143. stop undoes it.
func TeardownOnSignal(journalDir string, log *slog.Logger) (stop func()) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			removed, err := CleanupOwner(journalDir, os.Getpid(), log)
			fmt.Fprintf(os.Stderr, "lab: %v: removed %d namespaces (err=%v)\n", sig, len(removed), err)
			code := 130
			if sig == syscall.SIGTERM {
				code = 143
			}
			os.Exit(code)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// RunTests is a TestMain body for packages with lab tests:
//
//	func TestMain(m *testing.M) { os.Exit(lab.RunTests(m)) }
//
// It tears the package's labs down on SIGINT/SIGTERM while m runs.
func RunTests(m interface{ Run() int }) int {
	stop := TeardownOnSignal("", nil)
	defer stop()
	return m.Run()
}
