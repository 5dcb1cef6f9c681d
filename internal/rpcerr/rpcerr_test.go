package rpcerr

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"this machine is not registered", "this machine is not registered"},
		{`login: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`,
			"login: connection refused (127.0.0.1:1)"},
		{`management server http://127.0.0.1:1 unreachable: connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`,
			"management server http://127.0.0.1:1 unreachable: connection refused (127.0.0.1:1)"},
		{`rpc error: code = Unavailable desc = connection error: desc = "transport: authentication handshake failed: tls: first record does not look like a TLS handshake"`,
			"tls: first record does not look like a TLS handshake"},
		{`rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp: lookup mgmt.invalid on 10.0.0.1:53: no such host"`,
			"dial tcp: lookup mgmt.invalid on 10.0.0.1:53: no such host"},
		{`rpc error: code = Unavailable desc = error reading from server: EOF`, "error reading from server: EOF"},
		{`rpc error: code = InvalidArgument desc = bad key`, "bad key"},
		{`signal: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial unix /run/x.sock: connect: no such file or directory"`,
			"signal: no such file or directory (/run/x.sock)"},
	} {
		if got := Clean(tc.in); got != tc.want {
			t.Errorf("Clean(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if got := Clean(tc.in); strings.Contains(got, "rpc error") || strings.Contains(got, "desc =") {
			t.Errorf("raw gRPC text left: %q", got)
		}
	}
}

func TestTextAndMessage(t *testing.T) {
	raw := status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 10.1.2.3:443: connect: connection refused"`)
	wrapped := fmt.Errorf("connect to management: %w", raw)
	if got := Text(wrapped); got != "connect to management: connection refused (10.1.2.3:443)" {
		t.Errorf("Text: %q", got)
	}
	if got := Message(raw); got != "connection refused (10.1.2.3:443)" {
		t.Errorf("Message: %q", got)
	}
	if got := Message(errors.New("plain")); got != "plain" {
		t.Errorf("Message(plain): %q", got)
	}
	if Text(nil) != "" {
		t.Error("Text(nil) not empty")
	}
}

func FuzzClean(f *testing.F) {
	f.Add(`rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp 1.2.3.4:5: connect: x"`)
	f.Add("plain")
	f.Fuzz(func(t *testing.T, s string) {
		out := Clean(s)
		if len(out) > len(s)+64 {
			t.Fatalf("grew: %q -> %q", s, out)
		}
	})
}
