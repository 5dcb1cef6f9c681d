//go:build linux

package route

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"

	"petrel/client/netx"
)

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("route manager closed")

// platform is the Linux state of a Manager: its netlink handle and what it
// has installed (the source of truth for diffs, drift repair and Close).
type platform struct {
	nl      *nlOps
	nsFd    int // namespace fd for nftables; -1 = the process's
	routes  []routeSpec
	rules   []ruleSpec
	tables  map[string]nftTable // installed tables by name (a copy: drift reinstalls them)
	sysctls map[string]string   // key -> value before we changed it
}

func (m *Manager) platformLocked() (*platform, error) {
	if m.plat != nil {
		return m.plat, nil
	}
	o, err := openNL(m.opts.nsPath)
	if err != nil {
		return nil, err
	}
	fd := -1
	if o.ns.IsOpen() {
		fd = int(o.ns)
	}
	m.plat = &platform{nl: o, nsFd: fd, tables: map[string]nftTable{}, sysctls: map[string]string{}}
	return m.plat, nil
}

// Apply converges the host to cfg. It is idempotent: with an unchanged cfg
// it only reads (links and addresses for an exit node) and writes nothing,
// journals nothing. A route the kernel refuses is
// reported in Result.Failed and the rest still installed; an error means a
// failure that leaves the config unapplied (journal, sysctl, nftables or
// rule failures).
func (m *Manager) Apply(cfg Config) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == lcClosed {
		return Result{}, ErrClosed
	}
	if cfg.Interface == "" && m.plat == nil {
		return Result{}, nil // netstack mode: nothing on the host, ever
	}
	p, err := m.platformLocked()
	if err != nil {
		return Result{}, err
	}
	var lan hostLAN
	if cfg.Interface != "" && cfg.Exit.Active {
		if lan, err = p.nl.lan(cfg.Interface); err != nil {
			return Result{}, err
		}
	}
	want := wantState(cfg, lan)

	// Order: sysctls and nftables first (so rp_filter and the kill switch
	// are in place before an overlay default appears), then routes (added,
	// then removed), then rules; sysctls no longer needed are restored last.
	if err := m.setSysctls(p, want.sysctls); err != nil {
		return Result{}, err
	}
	if err := m.syncTables(p, want.tables); err != nil {
		return Result{}, err
	}
	res := Result{}
	add, del := diff(p.routes, want.routes)
	for _, r := range add {
		if err := m.record(KindRoute, r.String(), r.data()); err != nil {
			return res, fmt.Errorf("journal route: %w", err)
		}
		if err := p.nl.addRoute(r); err != nil {
			if res.Failed == nil {
				res.Failed = map[netip.Prefix]error{}
			}
			res.Failed[r.Dst] = err
			m.log.Warn("route refused", "route", r.String(), "err", err)
			continue
		}
		p.routes = append(p.routes, r)
	}
	var errs []error
	for _, r := range del {
		if err := p.nl.delRoute(r); err != nil {
			errs = append(errs, err)
			continue
		}
		p.routes = slices.DeleteFunc(p.routes, func(x routeSpec) bool { return x == r })
	}
	// Rules follow the routes actually in the table: a family whose routes
	// were all refused or removed loses its rules.
	if err := m.syncRules(p, wantRules(cfg, p.routes, lan)); err != nil {
		return res, errors.Join(append(errs, err)...)
	}
	errs = append(errs, m.restoreSysctls(p, want.sysctls))
	if m.installedLocked() {
		m.startDrift(m.checkDrift)
	}
	return res, errors.Join(errs...)
}

func (m *Manager) installedLocked() bool {
	p := m.plat
	return p != nil && (len(p.routes)+len(p.rules)+len(p.tables)+len(p.sysctls) > 0)
}

// setSysctls sets each wanted sysctl, journaling its previous value first.
func (m *Manager) setSysctls(p *platform, want []sysctlSpec) error {
	for _, s := range want {
		if _, ours := p.sysctls[s.Key]; ours {
			continue
		}
		err := p.nl.inNS(func() error {
			prev, err := readSysctl(s.Key)
			if err != nil || prev == s.Value {
				return err
			}
			if err := m.record(KindSysctl, s.Key, map[string]string{"prev": prev}); err != nil {
				return fmt.Errorf("journal sysctl: %w", err)
			}
			if err := writeSysctl(s.Key, s.Value); err != nil {
				return err
			}
			p.sysctls[s.Key] = prev
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// restoreSysctls puts back the previous value of each sysctl we changed
// that is not in want.
func (m *Manager) restoreSysctls(p *platform, want []sysctlSpec) error {
	var errs []error
	for key, prev := range p.sysctls {
		if slices.ContainsFunc(want, func(s sysctlSpec) bool { return s.Key == key }) {
			continue
		}
		if err := p.nl.inNS(func() error { return writeSysctl(key, prev) }); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(p.sysctls, key)
	}
	return errors.Join(errs...)
}

// syncTables makes our nftables tables match want in one batch.
func (m *Manager) syncTables(p *platform, want []nftTable) error {
	c, err := nftConn(p.nsFd)
	if err != nil {
		return err
	}
	next := map[string]nftTable{}
	changed := false
	for _, name := range ownedTables {
		i := slices.IndexFunc(want, func(t nftTable) bool { return t.Name == name })
		have, installed := p.tables[name]
		if i < 0 {
			if installed {
				queueDeleteTable(c, name)
				changed = true
			}
			continue
		}
		next[name] = want[i]
		if installed && have.String() == want[i].String() {
			continue
		}
		if !installed {
			if err := m.record(KindNftTable, "inet "+name, map[string]string{"family": "inet", "table": name}); err != nil {
				return fmt.Errorf("journal nft table: %w", err)
			}
		}
		if err := queueTable(c, want[i]); err != nil {
			return err
		}
		changed = true
	}
	if !changed {
		return nil
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("apply nftables: %w", err)
	}
	p.tables = next
	return nil
}

// syncRules adds the rules of want we lack and deletes ours not in want.
func (m *Manager) syncRules(p *platform, want []ruleSpec) error {
	add, del := diff(p.rules, want)
	for _, r := range add {
		if err := m.record(KindRule, r.String(), r.data()); err != nil {
			return fmt.Errorf("journal rule: %w", err)
		}
		if err := p.nl.addRule(r); err != nil {
			return err
		}
		p.rules = append(p.rules, r)
	}
	var errs []error
	for _, r := range del {
		if err := p.nl.delRule(r); err != nil {
			errs = append(errs, err)
			continue
		}
		p.rules = slices.DeleteFunc(p.rules, func(x ruleSpec) bool { return x == r })
	}
	return errors.Join(errs...)
}

// checkDrift runs on the drift goroutine: it reinstalls any rule, route or
// nftables table of ours that disappeared or changed. Journal entries
// already exist for everything it reinstalls.
func (m *Manager) checkDrift() {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.plat
	if m.state != lcRunning || p == nil {
		return
	}
	if len(p.rules) > 0 {
		if ks, err := p.nl.listRules(); err == nil {
			for _, r := range p.rules {
				if slices.ContainsFunc(ks, func(k netlink.Rule) bool { return ruleMatches(k, r) }) {
					continue
				}
				m.repaired("rule", r.String(), p.nl.addRule(r))
			}
		}
	}
	if len(p.routes) > 0 {
		if ks, err := p.nl.listTable(netx.Table); err == nil {
			for _, r := range p.routes {
				if p.nl.routeMissing(ks, r) {
					m.repaired("route", r.String(), p.nl.addRoute(r))
				}
			}
		}
	}
	if len(p.tables) > 0 {
		c, err := nftConn(p.nsFd)
		if err != nil {
			return
		}
		have, err := listOwnedTables(c)
		if err != nil {
			return
		}
		for name, t := range p.tables {
			if have[name] {
				continue
			}
			err := queueTable(c, t)
			if err == nil {
				err = c.Flush()
			}
			m.repaired("nft table", name, err)
		}
	}
}

func (m *Manager) repaired(what, name string, err error) {
	if err != nil {
		m.log.Debug("drift repair failed", "kind", what, "name", name, "err", err)
		return
	}
	m.repairs.Add(1)
	m.log.Info("drift repaired", "kind", what, "name", name)
}

// Close undoes everything this Manager installed and stops its goroutine.
// It is idempotent and final.
func (m *Manager) Close() error {
	m.stopDrift()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == lcClosed {
		return nil
	}
	m.state = lcClosed
	p := m.plat
	if p == nil {
		return nil
	}
	var errs []error
	errs = append(errs, m.syncRules(p, nil))
	for _, r := range slices.Backward(p.routes) {
		errs = append(errs, p.nl.delRoute(r))
	}
	p.routes = nil
	errs = append(errs, m.syncTables(p, nil), m.restoreSysctls(p, nil))
	p.nl.close()
	m.plat = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close route manager: %w", err)
	}
	return nil
}

// abandon simulates a crash (tests only): it stops the drift goroutine and
// drops the handles without undoing anything.
func (m *Manager) abandon() {
	m.stopDrift()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = lcClosed
	if m.plat != nil {
		m.plat.nl.close()
		m.plat = nil
	}
}
