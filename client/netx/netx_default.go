//go:build !linux

package netx

import (
	"log/slog"
	"syscall"
)

// MarkSupported reports whether this platform can mark sockets.
const MarkSupported = false

func markControl(_ *slog.Logger, _ uint32) func(network, address string, c syscall.RawConn) error {
	return nil
}

// SetMark is unsupported on this platform.
func SetMark(_ syscall.RawConn, _ uint32) error { return ErrMarkUnsupported }

// GetMark is unsupported on this platform.
func GetMark(_ syscall.RawConn) (uint32, error) { return 0, ErrMarkUnsupported }
