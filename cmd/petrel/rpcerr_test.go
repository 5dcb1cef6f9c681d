package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestRPCErr: every gRPC code becomes a sentence without gRPC's wording,
// and the raw error stays reachable for --log-level debug.
func TestRPCErr(t *testing.T) {
	for _, tc := range []struct {
		err     error
		timeout time.Duration
		want    string
	}{
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial unix /x.sock: connect: connection refused"`), 0,
			"the petrel daemon is not responding"},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), 0, "the petrel daemon is not responding"},
		{status.Error(codes.Unavailable, "no upstream answered"), 0, "no upstream answered"},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), 10 * time.Second, "timed out after 10s waiting for the daemon"},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), 0, "timed out waiting for the daemon"},
		{status.Error(codes.PermissionDenied, "changing petrel needs root: run sudo petrel up"), 0, "changing petrel needs root: run sudo petrel up"},
		{status.Error(codes.PermissionDenied, "unknown caller"), 0, "the petrel daemon refused this user (permission denied)"},
		{status.Error(codes.Unauthenticated, "no credentials"), 0, "the petrel daemon did not accept this user: no credentials"},
		{status.Error(codes.InvalidArgument, `unknown record type "XX"`), 0, `unknown record type "XX"`},
		{status.Error(codes.FailedPrecondition, `management server http://h unreachable: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.1:80: connect: connection refused"`), 0,
			"management server http://h unreachable: connection refused (10.0.0.1:80)"},
		{status.Error(codes.Unimplemented, "unknown method Set"), 0, "older than this petrel"},
		{status.Error(codes.Internal, "stop engine: boom"), 0, "the petrel daemon failed: stop engine: boom"},
		{status.Error(codes.Canceled, "context canceled"), 0, "cancelled"},
	} {
		got := rpcErrAfter(tc.err, tc.timeout)
		if !strings.Contains(got.Error(), tc.want) {
			t.Errorf("%v: %q, want %q", tc.err, got, tc.want)
		}
		if s := got.Error(); strings.Contains(s, "rpc error") || strings.Contains(s, "desc =") || strings.Contains(s, "code =") {
			t.Errorf("%v: raw gRPC text in %q", tc.err, s)
		}
		if raw := rawError(got); raw != tc.err {
			t.Errorf("%v: raw error %v", tc.err, raw)
		}
	}
	plain := errors.New("no petrel daemon at /x")
	if rpcErr(plain) != plain || rawError(plain) != nil {
		t.Error("a non-gRPC error must pass unchanged")
	}
}
