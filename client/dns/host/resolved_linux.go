package host

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// systemd-resolved's bus API (org.freedesktop.resolve1(5)).
const (
	resolvedName  = "org.freedesktop.resolve1"
	resolvedPath  = dbus.ObjectPath("/org/freedesktop/resolve1")
	resolvedIface = "org.freedesktop.resolve1.Manager"
	busTimeout    = 5 * time.Second

	afInet  = 2  // AF_INET
	afInet6 = 10 // AF_INET6 (Linux)
)

// linkAddress is SetLinkDNS's (iay): address family and raw address bytes.
type linkAddress struct {
	Family  int32
	Address []byte
}

// linkDomain is SetLinkDomains's (sb): a domain and whether it only routes
// queries (true) or is also a search domain (false).
type linkDomain struct {
	Domain      string
	RoutingOnly bool
}

// linkState is resolved mode's live state.
type linkState struct{ index int }

// pingResolved reports whether resolved answers on the bus.
func pingResolved(dial func() (*dbus.Conn, error)) error {
	conn, err := dial()
	if err != nil {
		return fmt.Errorf("connect system bus: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	if err := conn.Object(resolvedName, resolvedPath).CallWithContext(ctx, "org.freedesktop.DBus.Peer.Ping", 0).Err; err != nil {
		return fmt.Errorf("ping %s: %w", resolvedName, err)
	}
	return nil
}

// startResolved journals and applies per-link settings. The original
// (upstream) nameservers come from resolved's uplink file, because
// resolv.conf itself names only the 127.0.0.53 stub. Called with mu held.
func (m *Manager) startResolved() error {
	idx, err := m.plat.ifIndex(m.cfg.Interface)
	if err != nil {
		return fmt.Errorf("resolved mode: interface %q: %w", m.cfg.Interface, err)
	}
	o, err := ReadOriginal(m.plat.uplinksConf)
	if err != nil {
		o, _ = ReadOriginal(m.cfg.ResolvConf)
	}
	m.orig = withoutSelf(o, m.cfg.Nameserver)
	if j := m.cfg.Journal; j != nil {
		if err := j.Record(KindResolvedLink, m.cfg.Interface, map[string]string{"ifindex": strconv.Itoa(idx)}); err != nil {
			return fmt.Errorf("journal resolved link: %w", err)
		}
	}
	m.plat.link = &linkState{index: idx} // from here Close reverts
	return m.applyLink()
}

// applyLink sets our DNS server, domains and default-route flag on the
// overlay link. Called with mu held.
func (m *Manager) applyLink() error {
	conn, err := m.plat.dialBus()
	if err != nil {
		return fmt.Errorf("connect system bus: %w", err)
	}
	defer conn.Close()
	obj := conn.Object(resolvedName, resolvedPath)
	idx := int32(m.plat.link.index)
	ns := m.cfg.Nameserver
	fam := int32(afInet)
	if ns.Is6() && !ns.Is4In6() {
		fam = afInet6
	}
	domains, primary := linkDomains(m.search, m.match)
	if err := callResolved(obj, "SetLinkDNS", idx, []linkAddress{{fam, ns.Unmap().AsSlice()}}); err != nil {
		return err
	}
	if err := callResolved(obj, "SetLinkDomains", idx, domains); err != nil {
		return err
	}
	// Without the default-route flag resolved sends only matching queries
	// to this link. (SetLinkDefaultRoute exists since systemd 240.)
	if err := callResolved(obj, "SetLinkDefaultRoute", idx, primary); err != nil &&
		dbusErrorName(err) != "org.freedesktop.DBus.Error.UnknownMethod" {
		return err
	}
	return nil
}

// linkDomains turns our search and match domains into resolved's list:
// search domains as (d, false), match domains not already searched as
// routing-only (d, true). "~." or "." makes us primary: ("." , true) plus
// the default-route flag.
func linkDomains(search, match []string) ([]linkDomain, bool) {
	out := []linkDomain{}
	seen := map[string]bool{}
	for _, d := range mergeDomains(search, nil) {
		d = strings.TrimPrefix(d, "~")
		if d != "" && !seen[strings.ToLower(d)] {
			seen[strings.ToLower(d)] = true
			out = append(out, linkDomain{d, false})
		}
	}
	primary := false
	for _, d := range match {
		d = strings.TrimPrefix(strings.TrimSpace(d), "~")
		if d == "." || d == "" {
			if !primary {
				out = append(out, linkDomain{".", true})
			}
			primary = true
			continue
		}
		d = strings.TrimSuffix(d, ".")
		if !seen[strings.ToLower(d)] {
			seen[strings.ToLower(d)] = true
			out = append(out, linkDomain{d, true})
		}
	}
	return out, primary
}

func callResolved(obj dbus.BusObject, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	if err := obj.CallWithContext(ctx, resolvedIface+"."+method, 0, args...).Err; err != nil {
		return fmt.Errorf("resolved %s: %w", method, err)
	}
	return nil
}

func dbusErrorName(err error) string {
	var v dbus.Error
	if errors.As(err, &v) {
		return v.Name
	}
	var p *dbus.Error
	if errors.As(err, &p) {
		return p.Name
	}
	return ""
}

// goneErrors mean there is nothing left to revert: resolved is not running
// or no longer knows the link.
var goneErrors = map[string]bool{
	"org.freedesktop.DBus.Error.ServiceUnknown": true,
	"org.freedesktop.DBus.Error.NameHasNoOwner": true,
	"org.freedesktop.resolve1.NoSuchLink":       true,
}

// revertLink drops all settings we made on the link.
func revertLink(dial func() (*dbus.Conn, error), index int) error {
	conn, err := dial()
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil // no system bus: no resolved holding our settings
		}
		return fmt.Errorf("connect system bus: %w", err)
	}
	defer conn.Close()
	err = callResolved(conn.Object(resolvedName, resolvedPath), "RevertLink", int32(index))
	if err != nil && !goneErrors[dbusErrorName(err)] {
		return err
	}
	return nil
}

// undoLink is the crash undoer: the link is looked up by name now (a
// vanished interface took its resolved settings with it).
func undoLink(name string, dial func() (*dbus.Conn, error), ifIndex func(string) (int, error)) error {
	idx, err := ifIndex(name)
	if err != nil {
		return nil
	}
	return revertLink(dial, idx)
}
