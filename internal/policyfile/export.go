package policyfile

import (
	"bytes"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Export is the live state as a policy file with every section: applied
// as it is (even with prune), it changes nothing. Groups and peers are
// referred to by name; a peer whose name another peer shares, by FQDN or
// ID. The implicit All group is left out (it always exists).
func Export(ls *Live) *File {
	peerRef := peerNamer(ls.peers)
	groupNames := func(refs []liveRef) []string {
		out := make([]string, 0, len(refs))
		for _, r := range refs {
			out = append(out, r.Name)
		}
		return out
	}
	disabled := func(enabled bool) *bool {
		if enabled {
			return nil
		}
		return &enabled
	}
	f := &File{Groups: &[]Group{}, Policies: &[]Policy{}, Routes: &[]Route{},
		DNS: &DNS{Settings: &Settings{DNSDomain: ls.settings.DNSDomain}, Nameservers: &[]Nameserver{}, Zones: &[]Zone{}}}
	for _, g := range ls.groups {
		if g.Implicit {
			continue
		}
		peers := []string{}
		for _, p := range g.Peers {
			peers = append(peers, peerRef(p))
		}
		*f.Groups = append(*f.Groups, Group{Name: g.Name, Peers: &peers})
	}
	for _, p := range ls.policies {
		fp := Policy{Name: p.Name, Description: p.Description, Enabled: disabled(p.Enabled)}
		for _, r := range p.Rules {
			ports := make([]Port, 0, len(r.Ports))
			for _, s := range r.Ports {
				ports = append(ports, Port(s))
			}
			fp.Rules = append(fp.Rules, Rule{Name: r.Name, Sources: groupNames(r.Sources), Destinations: groupNames(r.Destinations),
				Protocol: r.Protocol, Ports: ports, Bidirectional: r.Bidirectional, Action: r.Action})
		}
		*f.Policies = append(*f.Policies, fp)
	}
	for _, r := range ls.routes {
		fr := Route{Network: r.Network, Groups: groupNames(r.Groups), Description: r.Description, Metric: r.Metric,
			Masquerade: r.Masquerade, Enabled: disabled(r.Enabled), AutoApply: r.AutoApply}
		if r.NetworkID != r.Network {
			fr.NetworkID = r.NetworkID
		}
		if r.Peer != nil {
			fr.Peer = peerRef(*r.Peer)
		} else {
			fr.PeerGroups = groupNames(r.PeerGroups)
		}
		*f.Routes = append(*f.Routes, fr)
	}
	for _, ns := range ls.nameservers {
		*f.DNS.Nameservers = append(*f.DNS.Nameservers, Nameserver{Name: ns.Name, Description: ns.Description,
			Nameservers: ns.Nameservers, Domains: ns.Domains, Primary: ns.Primary, Groups: groupNames(ns.Groups), Enabled: disabled(ns.Enabled)})
	}
	for _, z := range ls.zones {
		*f.DNS.Zones = append(*f.DNS.Zones, Zone{Domain: z.Domain, Records: z.Records})
	}
	return f
}

// peerNamer names a peer the way the file's references resolve to it: by
// name when no other peer's name equals it ignoring case, else by FQDN,
// else by ID.
func peerNamer(peers []livePeer) func(liveRef) string {
	count := map[string]int{}
	for _, p := range peers {
		count[strings.ToLower(p.Name)]++
	}
	byID := map[string]livePeer{}
	for _, p := range peers {
		byID[p.ID] = p
	}
	return func(r liveRef) string {
		p, ok := byID[r.ID]
		switch {
		case !ok:
			return r.ID
		case count[strings.ToLower(p.Name)] == 1 && p.Name != "" && strings.TrimSpace(p.Name) == p.Name:
			return p.Name
		case p.FQDN != "" && p.DNSLabel != "":
			return p.FQDN
		}
		return p.ID
	}
}

// YAML encodes the file as YAML, indented by two spaces.
func (f *File) YAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
