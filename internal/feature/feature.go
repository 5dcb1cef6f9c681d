// Package feature names the agent features that exist on some operating
// systems only, and the error an implementation returns when the agent
// needs such a feature where it is missing. Linux has every feature; the
// other platforms' implementations (files *_default.go, build tag !linux)
// return an *UnsupportedError instead of doing nothing, so that the engine
// can report the feature in status and in the log rather than fail
// silently (docs/platforms.md has the matrix).
//
// Imported by the agent's host-integration packages (client/route,
// client/dns/host) and by client/engine, which reports the errors. It has
// no state; everything is safe for concurrent use.
package feature

import (
	"errors"
	"runtime"
)

// Name names a platform-specific agent feature, as status shows it.
type Name string

// The platform-specific features.
const (
	// Routes: overlay routes to networks behind routing peers (policy
	// routing: a routing table and rules).
	Routes Name = "routes"
	// ExitNode: sending internet traffic through an exit node (policy
	// routing, kill switch).
	ExitNode Name = "exit-node"
	// RoutingPeer: serving networks to the overlay (IP forwarding, a
	// forward filter and masquerade).
	RoutingPeer Name = "routing-peer"
	// DNSHost: pointing the host's resolver at the agent (resolv.conf or
	// systemd-resolved).
	DNSHost Name = "dns-host"
)

// UnsupportedError says that the agent needs Feature here but this
// platform lacks the mechanism. errors.Is(err, errors.ErrUnsupported)
// holds for it.
type UnsupportedError struct {
	Feature Name
	Need    string // why the agent needs it now, e.g. "2 routes to install"
	Lacks   string // the missing mechanism, e.g. "policy routing"
	OS      string // runtime.GOOS where it was found
}

// Unsupported returns an *UnsupportedError for this platform.
func Unsupported(f Name, need, lacks string) *UnsupportedError {
	return &UnsupportedError{Feature: f, Need: need, Lacks: lacks, OS: runtime.GOOS}
}

func (e *UnsupportedError) Error() string {
	return string(e.Feature) + ": " + e.Need + "; " + e.Lacks + " is not supported on this platform (" + e.OS + ")"
}

// Is makes errors.Is(err, errors.ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == errors.ErrUnsupported }

// Split separates the *UnsupportedError leaves of err (wrapped with %w or
// joined with errors.Join, at any depth) from the rest. rest is nil when
// err held nothing else, and nil for a nil err. A wrapper around both
// kinds is kept whole in rest (its unsupported leaves are still returned).
func Split(err error) (unsupported []*UnsupportedError, rest error) {
	u, others := split(err)
	return u, errors.Join(others...)
}

func split(err error) ([]*UnsupportedError, []error) {
	switch x := err.(type) {
	case nil:
		return nil, nil
	case *UnsupportedError:
		return []*UnsupportedError{x}, nil
	case interface{ Unwrap() []error }:
		var us []*UnsupportedError
		var others []error
		for _, e := range x.Unwrap() {
			u, o := split(e)
			us, others = append(us, u...), append(others, o...)
		}
		return us, others
	case interface{ Unwrap() error }:
		us, others := split(x.Unwrap())
		if len(others) == 0 && len(us) > 0 {
			return us, nil
		}
		return us, []error{err}
	}
	return nil, []error{err}
}
