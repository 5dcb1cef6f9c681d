//go:build linux

package route

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
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
	tables  map[string]nftTable    // installed tables by name (a copy: drift reinstalls them)
	sysctls map[string]ownedSysctl // sysctls we changed, by key
}

// ownedSysctl is a sysctl we changed: its value before and what we wrote.
type ownedSysctl struct{ prev, wrote string }

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
	m.plat = &platform{nl: o, nsFd: fd, tables: map[string]nftTable{}, sysctls: map[string]ownedSysctl{}}
	return m.plat, nil
}

// Apply converges the host to cfg. It is idempotent: with an unchanged cfg
// it only reads (links and addresses for an exit node, the forwarding
// sysctls for a routing peer) and writes nothing, journals nothing. A route
// the kernel refuses is reported in Result.Failed and the rest still
// installed; a best-effort part that fails (petrel-mark, src_valid_mark) is
// reported in Result.Degraded; an error means a failure that leaves the
// config unapplied (journal, forwarding sysctls, kill switch or forward
// filter, or rule failures).
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
	var guard fwdGuard
	if cfg.Interface != "" && len(cfg.Serve) > 0 {
		guard = fwdGuard{v4: m.turnsOn(p, sysctlForward4), v6: m.turnsOn(p, sysctlForward6)}
	}
	want := wantState(cfg, lan, guard)
	res := Result{}

	// Order: forwarding no longer wanted is turned off before its filter
	// can go; then the best-effort parts (src_valid_mark, petrel-mark) and
	// the required tables (kill switch, forward filter), so that rp_filter
	// and the kill switch are in place before an overlay default appears;
	// forwarding only once its filter is; then routes (added, then
	// removed), then rules; other sysctls no longer needed are restored last.
	errs := []error{m.restoreSysctls(p, want.sysctls, isForward)}
	notFwd := func(s sysctlSpec) bool { return !isForward(s.Key) }
	if err := m.setSysctls(p, want.sysctls, notFwd, &res); err != nil {
		return res, err
	}
	if err := m.syncTables(p, want.tables, optionalTables); err != nil {
		m.degraded(&res, "nft table "+nftMarkTable, err)
	} else {
		m.recovered("nft table " + nftMarkTable)
	}
	if err := m.syncTables(p, want.tables, requiredTables()); err != nil {
		return res, err
	}
	fwd := func(s sysctlSpec) bool { return isForward(s.Key) }
	if err := m.setSysctls(p, want.sysctls, fwd, &res); err != nil {
		return res, err
	}
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
	errs = append(errs, m.restoreSysctls(p, want.sysctls, func(string) bool { return true }))
	if m.installedLocked() {
		m.startDrift(m.checkDrift)
	}
	return res, errors.Join(errs...)
}

// requiredTables is ownedTables without optionalTables.
func requiredTables() []string {
	return slices.DeleteFunc(slices.Clone(ownedTables), func(n string) bool { return slices.Contains(optionalTables, n) })
}

// turnsOn reports whether this Manager turns the forwarding sysctl key on
// (or already did): it is ours, or not "1" now. Unreadable counts as off.
func (m *Manager) turnsOn(p *platform, key string) bool {
	if _, ours := p.sysctls[key]; ours {
		return true
	}
	var cur string
	err := p.nl.inNS(func() (err error) {
		cur, err = readSysctl(key)
		return err
	})
	return err != nil || cur != "1"
}

func (m *Manager) installedLocked() bool {
	p := m.plat
	return p != nil && (len(p.routes)+len(p.rules)+len(p.tables)+len(p.sysctls) > 0)
}

// setSysctls sets each wanted sysctl that pick selects, journaling its
// previous value and the new one first. An Optional one that fails is
// noted in res as degraded; any other failure is returned.
func (m *Manager) setSysctls(p *platform, want []sysctlSpec, pick func(sysctlSpec) bool, res *Result) error {
	for _, s := range want {
		if !pick(s) {
			continue
		}
		if _, ours := p.sysctls[s.Key]; ours {
			continue
		}
		err := p.nl.inNS(func() error {
			prev, err := readSysctl(s.Key)
			if err != nil || prev == s.Value {
				return err
			}
			if err := m.record(KindSysctl, s.Key, map[string]string{"prev": prev, "value": s.Value}); err != nil {
				return fmt.Errorf("journal sysctl: %w", err)
			}
			if err := m.testFail("sysctl " + s.Key); err != nil {
				return fmt.Errorf("write sysctl %s: %w", s.Key, err)
			}
			if err := writeSysctl(s.Key, s.Value); err != nil {
				return err
			}
			p.sysctls[s.Key] = ownedSysctl{prev: prev, wrote: s.Value}
			return nil
		})
		switch {
		case err != nil && s.Optional:
			m.degraded(res, "sysctl "+s.Key, err)
		case err != nil:
			return err
		case s.Optional:
			m.recovered("sysctl " + s.Key)
		}
	}
	return nil
}

// restoreSysctls puts back the previous value of each sysctl we changed
// that pick selects and want does not list, unless someone else changed it
// since we did (see restoreSysctl): their value stays.
func (m *Manager) restoreSysctls(p *platform, want []sysctlSpec, pick func(key string) bool) error {
	var errs []error
	for key, o := range p.sysctls {
		if !pick(key) || slices.ContainsFunc(want, func(s sysctlSpec) bool { return s.Key == key }) {
			continue
		}
		err := p.nl.inNS(func() error {
			cur, err := readSysctl(key)
			if err != nil {
				return err
			}
			if !restoreSysctl(cur, o.prev, o.wrote) {
				if cur != o.prev {
					m.log.Info("sysctl changed by someone else since we set it; left alone", "key", key, "value", cur, "ours", o.wrote, "before", o.prev)
				}
				return nil
			}
			return writeSysctl(key, o.prev)
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		delete(p.sysctls, key)
	}
	return errors.Join(errs...)
}

// syncTables makes those of our nftables tables named in names match want
// (a table of names not in want is removed), in one batch.
func (m *Manager) syncTables(p *platform, want []nftTable, names []string) error {
	var ops []func(*nftables.Conn) error
	next := map[string]*nftTable{} // nil = removed
	for _, name := range names {
		i := slices.IndexFunc(want, func(t nftTable) bool { return t.Name == name })
		have, installed := p.tables[name]
		if i < 0 {
			if installed {
				ops = append(ops, func(c *nftables.Conn) error { queueDeleteTable(c, name); return nil })
				next[name] = nil
			}
			continue
		}
		t := want[i]
		if installed && have.String() == t.String() {
			continue
		}
		if !installed {
			if err := m.record(KindNftTable, "inet "+name, map[string]string{"family": "inet", "table": name}); err != nil {
				return fmt.Errorf("journal nft table: %w", err)
			}
		}
		if err := m.testFail("nft " + name); err != nil {
			return fmt.Errorf("apply nftables table %s: %w", name, err)
		}
		ops = append(ops, func(c *nftables.Conn) error { return queueTable(c, t) })
		next[name] = &t
	}
	if len(ops) == 0 {
		return nil
	}
	c, err := nftConn(p.nsFd)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if err := op(c); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("apply nftables: %w", err)
	}
	for name, t := range next {
		if t == nil {
			delete(p.tables, name)
		} else {
			p.tables[name] = *t
		}
	}
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

// checkDrift runs on the drift goroutine: it reinstalls any rule or route
// of ours that disappeared or changed, and any nftables table of ours that
// disappeared or lost or gained a chain, a rule or a set (tableIntact).
// Journal entries already exist for everything it reinstalls.
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
		for name, t := range p.tables {
			intact, err := tableIntact(c, t)
			if err != nil || intact {
				continue
			}
			err = queueTable(c, t)
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
// It is idempotent and final. The Manager is closed first (no Apply can
// start the drift goroutine afterwards); routes go before rules, and the
// mark rule before the suppress rule (teardownOrder), so unmarked traffic
// never meets the overlay default without the suppress rule before it.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.state == lcClosed {
		m.mu.Unlock()
		return nil
	}
	wait := m.closeLocked()
	err := m.teardownLocked()
	m.mu.Unlock()
	wait()
	if err != nil {
		return fmt.Errorf("close route manager: %w", err)
	}
	return nil
}

func (m *Manager) teardownLocked() error {
	p := m.plat
	if p == nil {
		return nil
	}
	trace := func(string) {}
	if m.opts.onDelete != nil {
		trace = m.opts.onDelete
	}
	var errs []error
	for _, r := range slices.Backward(p.routes) {
		trace("route " + r.String())
		errs = append(errs, p.nl.delRoute(r))
	}
	p.routes = nil
	for _, r := range teardownOrder(p.rules) {
		trace("rule " + r.String())
		errs = append(errs, p.nl.delRule(r))
	}
	p.rules = nil
	all := func(string) bool { return true }
	errs = append(errs,
		m.restoreSysctls(p, nil, isForward), // forwarding off before its filter goes
		m.syncTables(p, nil, ownedTables),
		m.restoreSysctls(p, nil, all))
	p.nl.close()
	m.plat = nil
	return errors.Join(errs...)
}
