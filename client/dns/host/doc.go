// Package host points the host's system resolver at the agent's DNS
// resolver while the agent runs, and back when it stops or after it
// crashed: a backup first, restored on down, on crash recovery and by
// petrel debug cleanup, the original nameservers captured before
// (docs/dns.md, "Host integration").
//
// Importers: client/engine (creates a Manager after the resolver listens,
// feeds Manager.Original to the resolver's bypass/original-nameserver
// handlers, calls Update on settings changes and Close on down) and
// client/daemon (registers Undoers with its journal replay). Nothing else
// should import it.
//
// Modes (Config.Mode, decided at Start for "auto"):
//   - "resolved": systemd-resolved is the host's resolver (resolv.conf is a
//     symlink to one of its files, or names 127.0.0.53) and answers on the
//     system bus. Our server and domains are set on the overlay link over
//     D-Bus (SetLinkDNS, SetLinkDomains, SetLinkDefaultRoute) and dropped
//     with RevertLink. resolv.conf is not touched.
//   - "file": resolv.conf is backed up byte for byte into the state dir
//     (0600, fsynced), journaled, then replaced by ours: a header naming
//     the backup, our nameserver, our search domains before the original
//     ones, the original options. Writes are atomic (rename) except on a
//     bind mount (ip netns exec, containers: EBUSY/EXDEV), which is written
//     in place. A symlink managed by something else is replaced by our
//     file and put back on Close. Close restores the bytes and removes the
//     backup. A backup left by a crashed run is the original (our own file
//     is never captured as the original).
//   - "off": nothing is changed. It is the only mode off Linux, where
//     Start in any other mode fails with a *feature.UnsupportedError
//     (internal/feature) and changes nothing.
//
// Foreign rewrites (file mode): a poll watcher (watch_linux.go explains
// why polling) rewrites our file when a DHCP client or NetworkManager
// replaced it. A usable foreign config becomes the new backup and the new
// Original, so Close and crash recovery give back what the host wants now,
// not what it wanted at Start. The engine should re-read Original after
// Status().Adopted changes.
//
// Goroutines: Manager methods are safe for concurrent use (one mutex). In
// file mode Start starts one watcher goroutine, which takes the mutex for
// each repair; Close stops it and waits for it before restoring.
//
// Journal kinds (recorded before the change they describe; undone by
// Undoers, which need only the entry, treat "already restored" as success
// and are no-ops when run twice):
//   - "resolvconf", name = resolv.conf path, data: path, backup, mode
//     (octal), nameserver (ours), link (symlink target, when the path was
//     a symlink), absent ("true" when there was no file). Undo: if the
//     backup exists and the file is still ours (or gone), put back the
//     bytes (or the symlink, or no file), then delete the backup. A file
//     the host replaced meanwhile is left alone. Recorded again when a
//     foreign rewrite changes the record (e.g. a new symlink target).
//   - "resolved-link", name = overlay interface, data: ifindex. Undo:
//     RevertLink on the interface's current index; a missing interface,
//     bus or resolved is success.
package host
