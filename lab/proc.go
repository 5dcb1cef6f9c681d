package lab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Proc is a process started in a lab namespace. Its PID is the program's
// own (ip netns exec execs it in place). It runs in its own process group
// and gets SIGKILL if the lab's process dies (Pdeathsig), the journal
// records it, and Lab.Close stops it.
type Proc struct {
	lab  *Lab
	Host *Host
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes

	mu  sync.Mutex
	out bytes.Buffer
	log *os.File
}

// lockedWriter appends to the Proc's output buffer.
type lockedWriter struct{ p *Proc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.out.Len() < 8<<20 {
		w.p.out.Write(b)
	}
	if w.p.log != nil {
		_, _ = w.p.log.Write(b)
	}
	return len(b), nil
}

func (l *Lab) startProc(h *Host, cmd *exec.Cmd) (*Proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("start process: lab closed")
	}
	p := &Proc{lab: l, Host: h, cmd: cmd, done: make(chan struct{})}
	if l.logDir != "" {
		l.seq++
		prog := filepath.Base(cmd.Args[len(cmd.Args)-1])
		if len(cmd.Args) > 4 {
			prog = filepath.Base(cmd.Args[4])
		}
		name := fmt.Sprintf("%s-%s-%d.log", h.Name, prog, l.seq)
		if f, err := os.Create(filepath.Join(l.logDir, name)); err == nil {
			p.log = f
		}
	}
	if cmd.Stdout == nil {
		cmd.Stdout = lockedWriter{p}
	}
	if cmd.Stderr == nil {
		cmd.Stderr = lockedWriter{p}
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if cmd.Cancel != nil { // made by CommandContext: stop the group gently first
		cmd.Cancel = func() error { return p.signalGroup(syscall.SIGTERM) }
		cmd.WaitDelay = 5 * time.Second
	}
	if err := cmd.Start(); err != nil {
		p.closeLog()
		return nil, fmt.Errorf("start %v in %s: %w", cmd.Args, h.Name, err)
	}
	_ = l.journal.addProc(cmd.Process.Pid)
	l.procs[p] = struct{}{}
	go func() {
		p.err = cmd.Wait()
		l.journal.removeProc(cmd.Process.Pid)
		l.mu.Lock()
		delete(l.procs, p)
		l.mu.Unlock()
		p.closeLog()
		close(p.done)
	}()
	return p, nil
}

func (p *Proc) closeLog() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log != nil {
		_ = p.log.Close()
		p.log = nil
	}
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait blocks until the process exits and returns its exit error.
func (p *Proc) Wait() error {
	<-p.done
	return p.err
}

// Output returns what the process wrote to stdout and stderr so far (first
// 8 MiB) when StartCmd captured them.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) error { return p.signalGroup(sig) }

func (p *Proc) signalGroup(sig syscall.Signal) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	err := syscall.Kill(-p.cmd.Process.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// Stop sends SIGTERM to the process group, waits up to 10 s, then sends
// SIGKILL, and waits for the exit. It is idempotent; it returns nil when
// the process is gone (whatever its exit status).
func (p *Proc) Stop() error {
	if err := p.signalGroup(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop pid %d: %w", p.Pid(), err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = p.signalGroup(syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("stop pid %d: still running after SIGKILL", p.Pid())
	}
}

var _ io.Writer = lockedWriter{}
