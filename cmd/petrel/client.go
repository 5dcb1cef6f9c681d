package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"petrel/internal/rpcerr"
	"petrel/proto/daemonpb"
)

// dialDaemon connects to the daemon socket; it fails fast when no daemon
// listens there (errNoDaemon) or this user may not open the socket
// (errSocketPermission; socket.go).
func dialDaemon(socket string) (daemonpb.DaemonClient, func(), error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return nil, nil, dialError(socket, err)
	}
	c.Close()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to daemon: %w", err)
	}
	return daemonpb.NewDaemonClient(conn), func() { conn.Close() }, nil
}

// rpcErr turns an error from a call to the daemon into a sentence (see
// rpcErrAfter).
func rpcErr(err error) error { return rpcErrAfter(err, 0) }

// rpcErrAfter turns an error from a call to the daemon that waited up to
// timeout (0 when unknown) into a sentence; the raw gRPC error stays
// reachable with errors.Unwrap and is printed with --log-level debug.
func rpcErrAfter(err error, timeout time.Duration) error {
	s, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	msg := rpcerr.Clean(s.Message())
	switch s.Code() {
	case codes.Unavailable:
		if transportFailure(s.Message()) {
			msg = "the petrel daemon is not responding (it may be stopping or restarting; see petrel status)"
		}
	case codes.DeadlineExceeded:
		msg = "timed out waiting for the daemon"
		if timeout > 0 {
			msg = fmt.Sprintf("timed out after %s waiting for the daemon", timeout.Round(time.Second))
		}
	case codes.Canceled:
		msg = "cancelled"
	case codes.PermissionDenied:
		if msg == "" || msg == "unknown caller" {
			msg = "the petrel daemon refused this user (permission denied)"
		}
	case codes.Unauthenticated:
		msg = "the petrel daemon did not accept this user: " + msg
	case codes.Unimplemented:
		msg = "the running petrel daemon does not know this command; it is probably older than this petrel " +
			"(restart it: petrel down, then petrel up)"
	case codes.ResourceExhausted:
		msg = "the daemon's answer was too large: " + msg
	case codes.Internal, codes.Unknown, codes.DataLoss:
		msg = "the petrel daemon failed: " + msg
	}
	// InvalidArgument, NotFound, FailedPrecondition, Aborted, AlreadyExists,
	// OutOfRange: the daemon's own message, already a sentence.
	return &daemonError{msg: msg, raw: err}
}

// transportFailure: an Unavailable status made by the gRPC client (the
// connection failed or broke), not by the daemon.
func transportFailure(msg string) bool {
	for _, p := range []string{"connection error", "transport", "error reading from server", "connection closed",
		"the client connection is closing", "last connection error"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return msg == ""
}

// daemonError is a failed daemon call said for a person.
type daemonError struct {
	msg string
	raw error // the gRPC error as received
}

func (e *daemonError) Error() string { return e.msg }
func (e *daemonError) Unwrap() error { return e.raw }

// rawError is the gRPC error behind err, for --log-level debug, or nil.
func rawError(err error) error {
	var de *daemonError
	if errors.As(err, &de) {
		return de.raw
	}
	return nil
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
		return rpcErrAfter(err, timeout)
	}
	return nil
}
