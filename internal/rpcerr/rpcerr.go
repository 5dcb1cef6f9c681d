// Package rpcerr turns the text of gRPC errors into sentences for people.
// A gRPC client error reads like `rpc error: code = Unavailable desc =
// connection error: desc = "transport: Error while dialing: dial tcp
// 10.0.0.1:443: connect: connection refused"`; what a person needs from it
// is "connection refused". The agent uses Text wherever such an error
// reaches a person: the daemon's last error and its answers to the CLI.
//
// Any package may import it. Functions are pure.
package rpcerr

import (
	"regexp"
	"strings"

	"google.golang.org/grpc/status"
)

var (
	// rpcPrefix is how a gRPC status error starts its Error().
	rpcPrefix = regexp.MustCompile(`rpc error: code = \w+ desc = `)
	// transport is the client transport's wrapping of a dial or handshake
	// error, quoted once or twice.
	transport = regexp.MustCompile(`connection error: desc = "?transport: (?:Error while dialing:? )?((?:[^"\\]|\\.)*)"?`)
	// dial is net's wording of a failed connect, address first.
	dial = regexp.MustCompile(`(?:dial|read|write) (?:tcp|udp|unix)[46]? (\S+?): (?:connect: |socket: )?`)
)

// Text is err's message for a person: every gRPC wrapping inside it
// (status prefix, connection and transport descriptions, escaped quotes)
// is removed, so "login: rpc error: code = Unavailable desc = connection
// error: desc = \"transport: Error while dialing: dial tcp 127.0.0.1:1:
// connect: connection refused\"" becomes "login: connection refused
// (127.0.0.1:1)". Text without gRPC wording is returned unchanged.
func Text(err error) string {
	if err == nil {
		return ""
	}
	return Clean(err.Error())
}

// Clean is Text for a message already turned into a string (a gRPC
// status message, an error string from another process).
func Clean(msg string) string {
	if !strings.Contains(msg, "desc = ") && !strings.Contains(msg, "transport: ") {
		return msg
	}
	msg = rpcPrefix.ReplaceAllString(msg, "")
	msg = transport.ReplaceAllStringFunc(msg, func(m string) string {
		inner := transport.FindStringSubmatch(m)[1]
		inner = strings.ReplaceAll(inner, `\"`, `"`)
		inner = strings.TrimPrefix(inner, "authentication handshake failed: ")
		if dm := dial.FindStringSubmatchIndex(inner); dm != nil {
			addr := inner[dm[2]:dm[3]]
			inner = inner[:dm[0]] + inner[dm[1]:] + " (" + addr + ")"
		}
		return inner
	})
	msg = strings.ReplaceAll(msg, "transport: ", "")
	return msg
}

// Message is the status message of a gRPC error, cleaned, or err's
// cleaned text when it carries no status.
func Message(err error) string {
	if s, ok := status.FromError(err); ok {
		return Clean(s.Message())
	}
	return Text(err)
}
