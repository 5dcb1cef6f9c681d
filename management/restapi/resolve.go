package restapi

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"petrel/management/model"
)

// resolver resolves peer and group references (ID or name) against one
// snapshot of an account.
type resolver struct{ a *model.Account }

// fqdn returns the peer's fully qualified name in the account's domain.
func (r resolver) fqdn(p *model.Peer) string {
	if p.DNSLabel == "" {
		return ""
	}
	return p.DNSLabel + "." + r.domain()
}

func (r resolver) domain() string {
	if r.a.Settings.DNSDomain == "" {
		return model.DefaultDNSDomain
	}
	return r.a.Settings.DNSDomain
}

// errUnknown and errAmbiguous are resolution failures; callers choose the
// status (404 for a path, 400 for a reference inside a body).
type resolveError struct {
	ambiguous bool
	msg       string
}

func (e *resolveError) Error() string { return e.msg }

// peer resolves s as a peer ID, overlay IP, FQDN, DNS label or name, in that
// order. A name shared by several peers is ambiguous.
func (r resolver) peer(s string) (*model.Peer, *resolveError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, &resolveError{msg: "empty peer reference"}
	}
	if p, ok := r.a.Peers[s]; ok {
		return p, nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		for _, p := range r.a.Peers {
			if p.IP == ip.Unmap() {
				return p, nil
			}
		}
		return nil, &resolveError{msg: fmt.Sprintf("no peer has IP %s", s)}
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if label, ok := strings.CutSuffix(name, "."+strings.ToLower(r.domain())); ok {
		name = label
	}
	for _, p := range r.a.Peers {
		if p.DNSLabel != "" && strings.EqualFold(p.DNSLabel, name) {
			return p, nil
		}
	}
	if m := matches(r.a.Peers, s, func(p *model.Peer) string { return p.Name }); len(m) == 1 {
		return m[0], nil
	} else if len(m) > 1 {
		return nil, ambiguous("peer", s, m, func(p *model.Peer) string { return p.ID })
	}
	return nil, &resolveError{msg: fmt.Sprintf("unknown peer %q (give an id, name, fqdn or overlay IP)", s)}
}

// group resolves s as a group ID or name.
func (r resolver) group(s string) (*model.Group, *resolveError) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, &resolveError{msg: "empty group reference"}
	}
	if g, ok := r.a.Groups[s]; ok {
		return g, nil
	}
	if m := matches(r.a.Groups, s, func(g *model.Group) string { return g.Name }); len(m) == 1 {
		return m[0], nil
	} else if len(m) > 1 {
		return nil, ambiguous("group", s, m, func(g *model.Group) string { return g.ID })
	}
	return nil, &resolveError{msg: fmt.Sprintf("unknown group %q (give an id or name)", s)}
}

// matches returns the values whose name equals s exactly or, failing that,
// case-insensitively.
func matches[T any](m map[string]T, s string, name func(T) string) []T {
	var exact, fold []T
	for _, v := range m {
		n := name(v)
		if n == s {
			exact = append(exact, v)
		} else if strings.EqualFold(n, s) {
			fold = append(fold, v)
		}
	}
	if len(exact) > 0 {
		return exact
	}
	return fold
}

func ambiguous[T any](what, s string, m []T, id func(T) string) *resolveError {
	ids := make([]string, 0, len(m))
	for _, v := range m {
		ids = append(ids, id(v))
	}
	slices.Sort(ids)
	return &resolveError{ambiguous: true, msg: fmt.Sprintf("%s name %q is ambiguous: %d %ss have it (ids %s); use the id",
		what, s, len(m), what, strings.Join(ids, ", "))}
}

// peerRef resolves a peer reference inside a request body (400 on failure).
func (r resolver) peerRef(field string, s ref) (string, error) {
	p, err := r.peer(string(s))
	if err != nil {
		return "", invalidf("%s: %s", field, err.msg)
	}
	return p.ID, nil
}

// groupRefs resolves group references inside a request body (400 on
// failure); duplicates are removed, order is kept.
func (r resolver) groupRefs(field string, refs []ref) ([]string, error) {
	out := make([]string, 0, len(refs))
	for i, s := range refs {
		g, err := r.group(string(s))
		if err != nil {
			return nil, invalidf("%s[%d]: %s", field, i, err.msg)
		}
		if !slices.Contains(out, g.ID) {
			out = append(out, g.ID)
		}
	}
	return out, nil
}

// peerRefs resolves peer references inside a request body (400 on failure);
// duplicates are removed, order is kept.
func (r resolver) peerRefs(field string, refs []ref) ([]string, error) {
	out := make([]string, 0, len(refs))
	for i, s := range refs {
		p, err := r.peer(string(s))
		if err != nil {
			return nil, invalidf("%s[%d]: %s", field, i, err.msg)
		}
		if !slices.Contains(out, p.ID) {
			out = append(out, p.ID)
		}
	}
	return out, nil
}

// isAll reports whether g is the implicit group of every peer.
func isAll(g *model.Group) bool { return g.Name == model.AllGroupName }

// groupMembers returns the peer IDs of g (every peer for the All group).
func (r resolver) groupMembers(g *model.Group) []string {
	if isAll(g) && len(g.PeerIDs) == 0 {
		ids := make([]string, 0, len(r.a.Peers))
		for id := range r.a.Peers {
			ids = append(ids, id)
		}
		return ids
	}
	return g.PeerIDs
}
