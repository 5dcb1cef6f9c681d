package main

// Flag checks run before anything starts (no daemon spawned, no state
// touched). Each returns a usage error (exit status 2) naming the flag;
// validate runs them all and reports every problem at once.

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"petrel/client/daemon"
)

// validatePort checks a UDP or TCP port flag: 0 (pick one) to 65535.
func validatePort(name string, v int) error {
	if v < 0 || v > 65535 {
		return usageErr(fmt.Errorf("%s %d: want a port number from 0 to 65535 (0 = choose one)", name, v))
	}
	return nil
}

// validateMTU checks the tunnel MTU: at least IPv4's minimum datagram
// size, at most what a UDP datagram can carry.
func validateMTU(name string, v int) error {
	if v < 576 || v > 65535 {
		return usageErr(fmt.Errorf("%s %d: want 576 to 65535 (the default 1280 suits almost every network)", name, v))
	}
	return nil
}

// validateURL checks a management URL (http:// or https://, a host, no
// path) and returns it normalised; "" stays "" (the saved profile's).
func validateURL(name, raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := daemon.ValidateManagementURL(raw)
	if err != nil {
		return "", usageErr(fmt.Errorf("%s: %w", name, err))
	}
	return u, nil
}

// validateHostname checks a peer name: printable text of at most 253
// bytes (management derives the DNS label from it); "" means the host's.
func validateHostname(name, v string) error {
	if v == "" {
		return nil
	}
	switch {
	case strings.TrimSpace(v) == "":
		return usageErr(fmt.Errorf("%s: a name cannot be blank", name))
	case len(v) > 253:
		return usageErr(fmt.Errorf("%s: %d bytes is too long (at most 253)", name, len(v)))
	case !utf8.ValidString(v):
		return usageErr(fmt.Errorf("%s %q: not valid UTF-8", name, v))
	case strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0:
		return usageErr(fmt.Errorf("%s %q: control characters are not allowed", name, v))
	}
	return nil
}

// validateListen checks a HOST:PORT listen address whose host is an IP
// literal (loopbackOnly: a loopback one) and whose port is in range.
func validateListen(name, v string, loopbackOnly bool) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return usageErr(fmt.Errorf("%s %q: want HOST:PORT, e.g. 127.0.0.1:1080", name, v))
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return usageErr(fmt.Errorf("%s %q: the host must be an IP address", name, v))
	}
	if loopbackOnly && !ip.IsLoopback() {
		return usageErr(fmt.Errorf("%s %q: must be a loopback address (127.0.0.0/8 or ::1)", name, v))
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return usageErr(fmt.Errorf("%s %q: port %q is not a number", name, v, port))
	}
	return validatePort(name, p)
}

// validateInterface checks a network interface name as Linux limits it.
func validateInterface(name, v string) error {
	if v == "" || len(v) > 15 || strings.ContainsAny(v, "/: \t\n") || v == "." || v == ".." {
		return usageErr(fmt.Errorf("%s %q: want 1 to 15 characters without '/', ':' or spaces", name, v))
	}
	return nil
}

// validateChoice checks a flag that takes one of a few words.
func validateChoice(name, v string, choices ...string) error {
	for _, c := range choices {
		if v == c {
			return nil
		}
	}
	return usageErr(fmt.Errorf("%s %q: want %s", name, v, strings.Join(choices, ", ")))
}

// validatePositive checks a duration flag that must be above zero.
func validatePositive(name string, d time.Duration) error {
	if d <= 0 {
		return usageErr(fmt.Errorf("%s %s: must be positive", name, d))
	}
	return nil
}

// absPath makes the path in *p absolute (the daemon may run from another
// directory); "" stays "".
func absPath(name string, p *string) error {
	if *p == "" {
		return nil
	}
	abs, err := filepath.Abs(*p)
	if err != nil {
		return usageErr(fmt.Errorf("%s %q: %w", name, *p, err))
	}
	*p = abs
	return nil
}

// validate checks every daemon flag (petrel up and petrel daemon), makes
// paths absolute, and returns all problems as one usage error.
func (f *daemonFlags) validate() error {
	errs := []error{
		validatePort("--wg-port", f.wgPort),
		validateMTU("--mtu", f.mtu),
		validateInterface("--interface", f.iface),
		validateChoice("--dns-mode", f.dnsMode, "auto", "file", "resolved", "off"),
		absPath("--ca-file", &f.caFile),
	}
	if f.netstack {
		errs = append(errs, validateListen("--socks5", f.socks5, false), validateListen("--dns", f.dnsAddr, true))
	}
	if f.cacheTTL < 0 {
		errs = append(errs, usageErr(fmt.Errorf("--debug-dns-cache-ttl %s: must not be negative", f.cacheTTL)))
	}
	return joinUsage(errs...)
}

// joinUsage is one usage error listing every non-nil problem, or nil.
func joinUsage(errs ...error) error {
	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return usageErr(errors.New(strings.Join(msgs, "; ")))
}
