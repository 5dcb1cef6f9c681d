// Command storm is the update-storm benchmark (issue 12): thousands of
// simulated agents on one real control plane under churn and policy
// changes, checking that every change reaches every affected agent.
//
//	go run ./bench/storm -agents 200 -team-size 20 -duration 20s   # quick run
//	bash bench/storm/run.sh                                        # 5,000 agents, 5 minutes
//	go test -race ./bench/storm/                                   # the checks, and that they can fail
//
// The server is a real server.Server (management only, default limits,
// SQLite in a temporary directory) in a child process: this binary re-execs
// itself with -role server, so the server's CPU, RSS, goroutines and heap
// are its own; the child also serves its stats and net/http/pprof on a
// second loopback port (logged at start). -inproc runs it in this process
// instead (tests).
//
// Agents are lightweight clients of the real gRPC API through client/mgmt
// (sealed Login with a setup key, Sync stream with the serial check,
// whatever the client negotiates), multiplexed over one connection per 100
// agents, each connection from its own 127.0.1.x address; each agent
// applies its deltas with netmap.Apply as the agent's engine does. Churn disconnects and reconnects agents, deletes peers
// through the REST API and registers new ones; the storm policy changes
// through the REST API every -policy-every.
//
// Checks: at every checkpoint the storm pauses, a barrier policy change
// must reach every agent (a stream's deltas arrive in order, so that agent
// then holds every earlier change), and every agent re-syncs: the fresh
// full map must equal the map it applied. Serials must be gap-free on every
// stream. Goroutines and live heap of the server (and of the agents'
// process) are sampled after a GC at every checkpoint and must not grow
// from the first to the last. Any failed check exits 1.
//
// Goroutines: main drives the storm; every agent stream has one goroutine
// (it applies what arrives); each churn operation and policy change runs in
// its own goroutine.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	var cfg config
	var o options
	flag.StringVar(&o.role, "role", "all", "all: start the server as a child process and run the agents; server: run only the server (used by all)")
	flag.BoolVar(&o.inproc, "inproc", false, "run the server in this process (its CPU and memory then include the agents')")
	flag.BoolVar(&o.json, "json", false, "print the report as JSON")
	flag.BoolVar(&o.verbose, "v", false, "debug logging")
	flag.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of this process")
	flag.StringVar(&o.srvProfile, "server-cpuprofile", "", "write a CPU profile of the server process (child) to this file")
	flag.IntVar(&cfg.Agents, "agents", 5000, "simulated agents")
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Minute, "storm time (checkpoint pauses excluded)")
	flag.Float64Var(&cfg.Churn, "churn", 0.10, "fraction of the agents churned per minute")
	flag.Float64Var(&cfg.Replace, "replace", 0.3, "fraction of churn events that delete the peer (REST) and register a new agent; the others disconnect and reconnect")
	flag.DurationVar(&cfg.PolicyEvery, "policy-every", 30*time.Second, "interval between policy changes (REST PUT of the storm policy)")
	flag.DurationVar(&cfg.CheckEvery, "check-every", time.Minute, "pause the storm and verify every agent this often (0: only at the start and the end)")
	flag.BoolVar(&cfg.Mesh, "mesh", false, "every peer sees every peer (All <-> All) instead of teams + infra")
	flag.IntVar(&cfg.TeamSize, "team-size", 100, "agents per team (teams topology)")
	flag.Float64Var(&cfg.Infra, "infra", 0.01, "fraction of the agents in the infra group, which every peer reaches: their maps hold every peer")
	flag.IntVar(&cfg.Conns, "conns", 0, fmt.Sprintf("gRPC connections the agents share, each from its own 127.0.1.x address (0: one per 100 agents; the server allows %d streams on each)", serverStreamsPerConn))
	flag.BoolVar(&cfg.OneSource, "one-source", false, fmt.Sprintf("dial every connection from 127.0.0.1 (at most %d connections: the server allows %d per source address; its per-source login rate limit then throttles registrations)", maxPoolConns, serverConnsPerSource))
	flag.DurationVar(&cfg.Offline, "offline", 2*time.Second, "longest time a reconnecting agent stays offline")
	flag.IntVar(&cfg.Setup, "setup-workers", 16, "concurrent registrations at setup")
	flag.DurationVar(&cfg.Wait, "wait", 2*time.Minute, "how long a barrier change or a verification may take before the agent counts as failed")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the churn")
	flag.Parse()
	os.Exit(o.run(cfg))
}

// options are the flags that are not part of the storm's shape.
type options struct {
	role, profile, srvProfile string
	inproc, json, verbose     bool
}

// run runs the selected role and returns the exit code (deferred work,
// such as writing the profile, is done by then).
func (o options) run(cfg config) int {
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.profile != "" {
		stopProfile, err := startProfile(o.profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer stopProfile()
	}
	switch o.role {
	case "server":
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: max(level, slog.LevelWarn)}))
		if err := serveRole(ctx, log.With("role", "server")); err != nil {
			log.Error("server role", "err", err)
			return 1
		}
		return 0
	case "all":
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
		return runAll(ctx, cfg, o, log)
	}
	fmt.Fprintf(os.Stderr, "-role %q: want all or server\n", o.role)
	return 2
}

// startProfile starts a CPU profile written to path by the returned stop.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// runAll starts the server, runs the storm and prints the report; it
// returns the exit code.
func runAll(ctx context.Context, cfg config, o options, log *slog.Logger) int {
	var srv serverHandle
	var err error
	if o.inproc {
		srvLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		srv, err = startInproc(ctx, srvLog.With("role", "server"))
	} else {
		var exe string
		if exe, err = os.Executable(); err == nil {
			srv, err = startChild(ctx, exe, o.srvProfile)
		}
	}
	if err != nil {
		log.Error("start server", "err", err)
		return 1
	}
	defer srv.Stop()
	rep, err := runStorm(ctx, cfg, srv, log)
	if err != nil {
		log.Error("storm", "err", err)
		if rep == nil {
			return 1
		}
	}
	if o.json {
		_ = json.NewEncoder(os.Stdout).Encode(rep)
	} else {
		rep.print(os.Stdout)
	}
	if err != nil || len(rep.problems()) > 0 {
		return 1
	}
	return 0
}
