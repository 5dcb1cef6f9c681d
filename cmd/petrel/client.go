package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"petrel/proto/daemonpb"
)

// dialDaemon connects to the daemon socket; it fails fast when no daemon
// listens there.
func dialDaemon(socket string) (daemonpb.DaemonClient, func(), error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("no petrel daemon at %s (start one with `petrel up` or `petrel daemon`): %w", socket, err)
	}
	c.Close()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to daemon: %w", err)
	}
	return daemonpb.NewDaemonClient(conn), func() { conn.Close() }, nil
}

// rpcErr turns a gRPC status into a plain message.
func rpcErr(err error) error {
	if s, ok := status.FromError(err); ok {
		return fmt.Errorf("%s", s.Message())
	}
	return err
}

// logFormats are the values of --log-format.
const logFormats = "text or json"

// checkLogFlags validates --log-level and --log-format (a usage error).
func (g *globalFlags) checkLogFlags() error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(g.logLevel)); err != nil {
		return &exitError{2, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)}
	}
	if g.logFormat != "text" && g.logFormat != "json" {
		return &exitError{2, fmt.Errorf("--log-format %q: want %s", g.logFormat, logFormats)}
	}
	return nil
}

// newLogger returns the daemon's logger on stderr (flags already checked).
func newLogger(g *globalFlags) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(g.logLevel))
	opts := &slog.HandlerOptions{Level: l}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// callDaemon dials the daemon and makes one call under a timeout; a gRPC
// error comes back as its plain message.
func callDaemon(g *globalFlags, timeout time.Duration, call func(context.Context, daemonpb.DaemonClient) error) error {
	cl, closeFn, err := dialDaemon(g.socketPath())
	if err != nil {
		return err
	}
	defer closeFn()
	ctx, cancel := withTimeout(timeout)
	defer cancel()
	if err := call(ctx, cl); err != nil {
		return rpcErr(err)
	}
	return nil
}
