package management

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"petrel/management/model"
)

// Limits on the strings an agent reports about itself (bytes, cut on a
// rune boundary).
const (
	maxHostname = 253
	maxOS       = 64
	maxKernel   = 128
	maxVersion  = 64
)

// cleanAgentText makes a string an agent sent storable, encodable and
// printable: invalid UTF-8 dropped, control and bidi-override characters
// dropped, surrounding space trimmed, cut to at most max bytes without
// splitting a character. Anyone with a setup key controls these strings,
// and a single invalid one in a map would fail every Sync of the account.
func cleanAgentText(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	s = strings.Map(func(r rune) rune {
		if unprintable(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimSpace(s[:cut])
}

// unprintable: controls (C0, DEL, C1) and the format characters that
// reorder or hide text.
func unprintable(r rune) bool {
	if unicode.IsControl(r) {
		return true
	}
	switch {
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// cleanName reports whether an admin-given name has no unprintable
// characters (names are refused, not repaired: the admin sees the error).
func cleanName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unprintable(r) {
			return false
		}
	}
	return true
}

func cleanMeta(m model.PeerMeta) model.PeerMeta {
	m.Hostname = cleanAgentText(m.Hostname, maxHostname)
	m.OS = cleanAgentText(m.OS, maxOS)
	m.Kernel = cleanAgentText(m.Kernel, maxKernel)
	m.Version = cleanAgentText(m.Version, maxVersion)
	return m
}

// repairPeer cleans the agent-supplied strings of a peer loaded from the
// store (rows written before these checks existed); it reports whether
// anything changed.
func repairPeer(p *model.Peer) bool {
	name := displayName(p.Name)
	meta := cleanMeta(p.Meta)
	if name == p.Name && meta == p.Meta {
		return false
	}
	p.Name, p.Meta = name, meta
	return true
}
