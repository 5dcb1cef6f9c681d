package host

import (
	"slices"
	"time"
)

// The repair watcher polls resolv.conf every pollEvery (2 s) and compares
// it with what we wrote. Polling rather than inotify, because:
//   - inside `ip netns exec` (and containers) /etc/resolv.conf is a bind
//     mount; a writer on the host side renames a new file over the mount
//     source's directory entry, which inotify on our /etc never reports,
//     and a watch on the file's inode misses renames altogether;
//   - one mechanism for plain files, symlinks and bind mounts is one code
//     path to test; the cost is a stat and a read of a file under 1 KiB
//     every 2 s, and DHCP/NetworkManager rewrites are rare, so a repair
//     latency of up to 2 s is acceptable.
//
// A change is acted on only once it is stable (two reads settle apart give
// the same result), so a non-atomic writer is not interrupted mid-write.

// checkFile is the watcher's tick in file mode.
func (m *Manager) checkFile(stop <-chan struct{}) {
	m.mu.Lock()
	f := m.plat.file
	if m.state != stateStarted || f == nil {
		m.mu.Unlock()
		return
	}
	path, ours := f.rec.Path, f.ours
	m.mu.Unlock()

	first, err := readSnapshot(path)
	if err == nil && first.exists && first.link == "" && string(first.content) == string(ours) {
		return
	}
	select {
	case <-stop:
		return
	case <-time.After(m.settle):
	}
	if m.plat.afterSettle != nil {
		m.plat.afterSettle()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateStarted || m.plat.file != f {
		return
	}
	snap, err := readSnapshot(path)
	if err != nil {
		m.fail("read resolv.conf", err)
		return
	}
	if first.link == "" && snap.exists && string(snap.content) == string(f.ours) {
		return // we rewrote it meanwhile (Update)
	}
	if !snap.equal(first) {
		return // still changing; look again next tick
	}
	if err := m.repairLocked(snap); err != nil {
		m.fail("repair resolv.conf", err)
	}
}

// repairLocked handles a foreign rewrite. Decision: foreign content that
// is a usable resolver config (at least one nameserver, none of them ours,
// no Petrel marker) is what the host wants now, so it becomes the new
// backup — restore on Close gives back the latest foreign content — and
// the new Original (its nameservers, search and options). Our file is then
// rewritten with the new original search domains and options. Content
// that is ours or has no nameserver (likely a broken write) is only
// overwritten. Called with mu held.
func (m *Manager) repairLocked(snap snapshot) error {
	f := m.plat.file
	ns := m.cfg.Nameserver
	parsed := parseResolvConf(snap.content)
	if snap.exists && !isOurs(snap.content, ns) && len(parsed.Nameservers) > 0 {
		rec := f.rec
		rec.Link, rec.Absent = snap.link, false
		if snap.link == "" {
			rec.Mode = snap.perm
		}
		if err := writeBackup(rec, snap.content); err != nil {
			return err
		}
		if rec != f.rec && m.cfg.Journal != nil {
			if err := m.cfg.Journal.Record(KindResolvConf, rec.Path, rec.data()); err != nil {
				return err
			}
		}
		f.rec = rec
		prev := m.orig.Nameservers
		m.orig = withoutSelf(parsed, ns)
		m.adopted++
		m.log.Info("host rewrote resolv.conf; adopted as the original",
			"nameservers", m.orig.Nameservers, "nameservers_changed", !slices.Equal(prev, m.orig.Nameservers))
	}
	if err := m.writeOurs(); err != nil {
		return err
	}
	m.repairs++
	m.log.Info("resolv.conf repaired", "repairs", m.repairs)
	return nil
}

func (m *Manager) fail(what string, err error) {
	m.lastErr = what + ": " + err.Error()
	m.log.Warn(what, "err", err)
}
