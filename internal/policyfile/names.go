package policyfile

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// names resolves the file's references against the state apply will
// leave: groups by their name after apply (the file's spelling for a group
// it declares), peers (never created by apply) by ID.
type names struct {
	live *Live
	// declared maps the lower-case name of each group in the file to its
	// spelling there; nil when the file does not manage groups.
	declared map[string]string
	// canon maps a live group's ID to its name after apply.
	canon map[string]string
	// liveID maps a name after apply to the live group's ID.
	liveID map[string]string
	// doomed: names of live groups --prune deletes.
	doomed map[string]bool
}

func newNames(ls *Live, pf *File, prune bool) *names {
	n := &names{live: ls, canon: map[string]string{}, liveID: map[string]string{}, doomed: map[string]bool{}}
	if pf.Groups != nil {
		n.declared = map[string]string{}
		for _, g := range *pf.Groups {
			n.declared[strings.ToLower(strings.TrimSpace(g.Name))] = strings.TrimSpace(g.Name)
		}
	}
	for _, g := range ls.groups {
		name := g.Name
		if d, ok := n.declared[strings.ToLower(g.Name)]; ok {
			name = d
		} else if n.declared != nil && prune && !g.Implicit {
			n.doomed[name] = true
		}
		n.canon[g.ID] = name
		n.liveID[name] = g.ID
	}
	return n
}

// group resolves a group reference of the file: an ID of a live group, or
// a name (exact, then case-insensitive) of a group in the file or on the
// server. A group --prune is about to delete is an error too.
func (n *names) group(s string) (ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ref{}, fmt.Errorf("empty group reference")
	}
	name, ok := n.canon[s]
	if !ok {
		var all []string
		for _, d := range n.declared {
			all = append(all, d)
		}
		for _, c := range n.canon {
			all = append(all, c)
		}
		if i := slices.Index(all, s); i >= 0 {
			name, ok = all[i], true
		} else if i := slices.IndexFunc(all, func(a string) bool { return strings.EqualFold(a, s) }); i >= 0 {
			name, ok = all[i], true
		}
	}
	switch {
	case !ok:
		return ref{}, fmt.Errorf("unknown group %q (neither in the file nor on the server)", s)
	case n.doomed[name]:
		return ref{}, fmt.Errorf("group %q is not in the file, so --prune would delete it; add it to the groups", name)
	}
	return ref{key: name, name: name}, nil
}

// groups resolves a list of group references; field names it in errors.
func (n *names) groups(field string, refs []string) ([]ref, []error) {
	var out []ref
	var errs []error
	for i, s := range refs {
		r, err := n.group(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
			continue
		}
		out = append(out, r)
	}
	return out, errs
}

// liveGroups is the canonical form of a live object's group references.
func (n *names) liveGroups(refs []liveRef) []ref {
	out := make([]ref, 0, len(refs))
	for _, r := range refs {
		name, ok := n.canon[r.ID]
		if !ok {
			name = r.Name
		}
		out = append(out, ref{key: name, name: name})
	}
	return out
}

// peer resolves a peer reference as the API does: ID, overlay IP, FQDN,
// DNS label, then display name (exact, then case-insensitive; a name two
// peers share is ambiguous).
func (n *names) peer(s string) (ref, error) {
	s = strings.TrimSpace(s)
	peers := n.live.peers
	found := func(p livePeer) ref { return ref{key: p.ID, name: p.Name} }
	if i := slices.IndexFunc(peers, func(p livePeer) bool { return p.ID == s }); i >= 0 {
		return found(peers[i]), nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		if i := slices.IndexFunc(peers, func(p livePeer) bool { return p.IP == ip.Unmap().String() }); i >= 0 {
			return found(peers[i]), nil
		}
		return ref{}, fmt.Errorf("no peer has IP %s", s)
	}
	host := strings.ToLower(strings.TrimSuffix(s, "."))
	if i := slices.IndexFunc(peers, func(p livePeer) bool {
		return p.DNSLabel != "" && (strings.EqualFold(p.FQDN, host) || strings.EqualFold(p.DNSLabel, host))
	}); i >= 0 {
		return found(peers[i]), nil
	}
	for _, fold := range []bool{false, true} {
		var m []livePeer
		for _, p := range peers {
			if p.Name == s || fold && strings.EqualFold(p.Name, s) {
				m = append(m, p)
			}
		}
		if len(m) == 1 {
			return found(m[0]), nil
		}
		if len(m) > 1 {
			return ref{}, fmt.Errorf("peer name %q is ambiguous: %d peers have it; use the id, fqdn or IP", s, len(m))
		}
	}
	return ref{}, fmt.Errorf("unknown peer %q (give an id, name, fqdn or overlay IP)", s)
}

func (n *names) peerRefs(field string, refs []string) ([]ref, []error) {
	var out []ref
	var errs []error
	for i, s := range refs {
		r, err := n.peer(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
			continue
		}
		out = append(out, r)
	}
	return out, errs
}

func livePeerRefs(refs []liveRef) []ref {
	out := make([]ref, 0, len(refs))
	for _, r := range refs {
		out = append(out, ref{key: r.ID, name: r.Name})
	}
	return out
}
