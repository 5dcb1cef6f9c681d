package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"time"

	"petrel/server"
)

// serverHandle is the control plane the agents talk to: a real
// server.Server (management only, SQLite in a temporary directory), either
// in a child process (-role server) or in this process (-inproc, tests).
type serverHandle interface {
	// Addr is host:port of the one listener (gRPC and REST).
	Addr() string
	// Token is the admin token of the default account.
	Token() string
	// Stats samples the server's process (after a GC when gc is set).
	Stats(ctx context.Context, gc bool) (procStats, error)
	// Separate reports whether the server has its own process, so its
	// CPU and memory figures exclude the agents.
	Separate() bool
	// Stop stops the server and removes its data; idempotent.
	Stop()
}

// newServerConfig is the configuration both roles start: management only,
// the default limits (64 connections per source address, 128 streams per
// connection), SQLite in dir.
func newServerConfig(dir string, log *slog.Logger) server.Config {
	return server.Config{
		DataDir:    dir,
		Listen:     "127.0.0.1:0",
		Components: server.Components{Management: true},
		Logger:     log,
	}
}

// startServer starts a server in a fresh temporary directory.
func startServer(ctx context.Context, log *slog.Logger) (*server.Server, string, error) {
	dir, err := os.MkdirTemp("", "petrel-storm-")
	if err != nil {
		return nil, "", fmt.Errorf("create data dir: %w", err)
	}
	srv, err := server.New(newServerConfig(dir, log))
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start server: %w", err)
	}
	if srv.AdminToken() == "" {
		srv.Stop()
		_ = os.RemoveAll(dir)
		return nil, "", errors.New("start server: no admin token (store not fresh)")
	}
	return srv, dir, nil
}

// inprocServer runs the server in this process.
type inprocServer struct {
	srv *server.Server
	dir string
}

func startInproc(ctx context.Context, log *slog.Logger) (*inprocServer, error) {
	srv, dir, err := startServer(ctx, log)
	if err != nil {
		return nil, err
	}
	return &inprocServer{srv: srv, dir: dir}, nil
}

func (s *inprocServer) Addr() string   { return s.srv.Addr().String() }
func (s *inprocServer) Token() string  { return s.srv.AdminToken() }
func (s *inprocServer) Separate() bool { return false }
func (s *inprocServer) Stats(_ context.Context, gc bool) (procStats, error) {
	return sampleProc(gc), nil
}
func (s *inprocServer) Stop() {
	s.srv.Stop()
	_ = os.RemoveAll(s.dir)
}

// hello is the line the server role prints once it serves.
type hello struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	Stats string `json:"stats"` // host:port of the stats endpoint
}

// serveRole is -role server: start the server, print a hello line, serve
// /stats on a second loopback port, and stop when stdin closes (the parent
// ended) or on SIGINT/SIGTERM (ctx).
func serveRole(ctx context.Context, log *slog.Logger) error {
	srv, dir, err := startServer(ctx, log)
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	defer srv.Stop()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for stats: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sampleProc(r.URL.Query().Get("gc") == "1"))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	log.Warn("server serving; stats and /debug/pprof/ on the second address", "addr", srv.Addr().String(), "stats", ln.Addr().String())
	if err := json.NewEncoder(os.Stdout).Encode(hello{Addr: srv.Addr().String(), Token: srv.AdminToken(), Stats: ln.Addr().String()}); err != nil {
		return fmt.Errorf("write hello: %w", err)
	}
	stdin := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdin) }()
	select {
	case <-stdin:
	case <-ctx.Done():
	case <-srv.Done():
		return srv.Err()
	}
	return nil
}

// childServer is a server in a child process (this binary, -role server).
type childServer struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	hello hello
	hc    *http.Client
	done  chan struct{}
}

func startChild(ctx context.Context, exe, profile string) (*childServer, error) {
	args := []string{"-role", "server"}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server process: %w", err)
	}
	c := &childServer{cmd: cmd, stdin: stdin, hc: &http.Client{Timeout: time.Minute}, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	line := make(chan error, 1)
	go func() {
		b, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(b, &c.hello)
		}
		line <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-line:
	case <-time.After(time.Minute):
		err = errors.New("no hello within a minute")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		c.Stop()
		return nil, fmt.Errorf("start server process: %w", err)
	}
	return c, nil
}

func (c *childServer) Addr() string   { return c.hello.Addr }
func (c *childServer) Token() string  { return c.hello.Token }
func (c *childServer) Separate() bool { return true }

func (c *childServer) Stats(ctx context.Context, gc bool) (procStats, error) {
	url := "http://" + c.hello.Stats + "/stats"
	if gc {
		url += "?gc=1"
	}
	var st procStats
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return st, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("server stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("server stats: %w", err)
	}
	return st, nil
}

// Stop closes the child's stdin (it stops its server and exits) and kills
// it if it has not exited within 30 s.
func (c *childServer) Stop() {
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	c.hc.CloseIdleConnections()
}
