// Package mapcache keeps the agent's last network map on disk so that an
// agent restarted while the whole control plane is unreachable can bring its
// tunnels back from what it knew: the login answer (overlay address, server
// config), the last applied map, when that map was last known current, the
// WireGuard port and each peer's last working direct endpoint.
//
// The file is sealed to the agent's own WireGuard key (NaCl box from the key
// to itself: nobody without the key file can read or forge it) and written
// atomically (temp file, fsync, rename, fsync of the directory). Load reads
// defensively: a missing file is ErrNoCache, a truncated, garbage or foreign
// file is a clear error, never a panic; callers then run without a cache.
//
// Imported by client/engine. Save and Load are safe for concurrent use on
// different paths; a Writer owns one goroutine and serialises writes to its
// path.
package mapcache
