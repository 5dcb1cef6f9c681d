package management

import (
	"net/netip"
	"strconv"
	"strings"

	"petrel/management/model"
)

// maxName bounds display names of groups, policies, keys and so on.
const maxName = 200

func checkName(what, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", Errorf(KindInvalid, "%s name must not be empty", what)
	}
	if len(name) > maxName {
		return "", Errorf(KindInvalid, "%s name is longer than %d characters", what, maxName)
	}
	if !cleanName(name) {
		return "", Errorf(KindInvalid, "%s name contains control characters or invalid UTF-8", what)
	}
	return name, nil
}

// checkDescription trims a description and refuses one that is too long
// or holds control characters or invalid UTF-8 (tables, logs and the dashboard's
// edit forms would show them escaped, and a form saved back would change
// the text).
func checkDescription(what string, desc *string) error {
	*desc = strings.TrimSpace(*desc) // a YAML block scalar ends with a newline
	d := *desc
	if len(d) > maxName {
		return Errorf(KindInvalid, "%s description is longer than %d characters", what, maxName)
	}
	if !cleanName(d) {
		return Errorf(KindInvalid, "%s description contains control characters or invalid UTF-8", what)
	}
	return nil
}

// checkGroupRefs verifies that every ID names a group of the account.
func checkGroupRefs(a *model.Account, field string, ids []string, required bool) error {
	if required && len(ids) == 0 {
		return Errorf(KindInvalid, "%s: at least one group is required", field)
	}
	for _, id := range ids {
		if a.Groups[id] == nil {
			return Errorf(KindInvalid, "%s: unknown group %q", field, id)
		}
	}
	return nil
}

// validDomain reports whether s is a DNS name (labels of [a-z0-9-] and
// underscores, not starting or ending with a hyphen, 1..63 characters each,
// 253 in total). A trailing dot is allowed.
func validDomain(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// normDomain lowercases a domain and drops a trailing dot.
func normDomain(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

func validatePolicy(a *model.Account, p *model.Policy) error {
	name, err := checkName("policy", p.Name)
	if err != nil {
		return err
	}
	p.Name = name
	if err := checkDescription("policy", &p.Description); err != nil {
		return err
	}
	if len(p.Rules) == 0 {
		return Errorf(KindInvalid, "policy %q has no rules", p.Name)
	}
	if len(p.Rules) > MaxRulesPerPolicy {
		return Errorf(KindInvalid, "policy %q has %d rules; a policy may have at most %d", p.Name, len(p.Rules), MaxRulesPerPolicy)
	}
	seen := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		where := "rule " + strconv.Itoa(i+1)
		if r.Name != "" {
			where += " (" + r.Name + ")"
		}
		if r.ID == "" {
			r.ID = newID()
		}
		if seen[r.ID] {
			return Errorf(KindInvalid, "%s: duplicate rule id %q", where, r.ID)
		}
		seen[r.ID] = true
		if len(r.Sources) > MaxGroupsPerRule || len(r.Destinations) > MaxGroupsPerRule {
			return Errorf(KindInvalid, "%s: at most %d source and %d destination groups", where, MaxGroupsPerRule, MaxGroupsPerRule)
		}
		if len(r.Ports) > MaxPortsPerRule {
			return Errorf(KindInvalid, "%s: %d port ranges; a rule may have at most %d", where, len(r.Ports), MaxPortsPerRule)
		}
		if err := checkGroupRefs(a, where+" sources", r.Sources, true); err != nil {
			return err
		}
		if err := checkGroupRefs(a, where+" destinations", r.Destinations, true); err != nil {
			return err
		}
		if r.Protocol == "" {
			r.Protocol = model.ProtoAll
		}
		switch r.Protocol {
		case model.ProtoAll, model.ProtoTCP, model.ProtoUDP, model.ProtoICMP:
		default:
			return Errorf(KindInvalid, "%s: unknown protocol %q (want all, tcp, udp or icmp)", where, r.Protocol)
		}
		if len(r.Ports) > 0 && r.Protocol != model.ProtoTCP && r.Protocol != model.ProtoUDP {
			return Errorf(KindInvalid, "%s: ports need protocol tcp or udp, not %q", where, r.Protocol)
		}
		for _, pr := range r.Ports {
			if pr.Start == 0 || pr.End == 0 {
				return Errorf(KindInvalid, "%s: port 0 is not allowed", where)
			}
			if pr.Start > pr.End {
				return Errorf(KindInvalid, "%s: port range %d-%d starts after it ends", where, pr.Start, pr.End)
			}
		}
		if r.Action == "" {
			r.Action = model.ActionAccept
		}
		if r.Action != model.ActionAccept && r.Action != model.ActionDrop {
			return Errorf(KindInvalid, "%s: unknown action %q (want accept or drop)", where, r.Action)
		}
	}
	return nil
}

// reservedNets are ranges a route may not overlap (contain or lie inside):
// traffic to them never goes through a routing peer, and routing them would
// hijack the overlay or the host's own addresses. The overlay (and every
// account's /16 inside it) is checked separately with its own message.
var reservedNets = []struct {
	pfx  netip.Prefix
	what string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "the loopback range"},
	{netip.MustParsePrefix("::1/128"), "the loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "the link-local range"},
	{netip.MustParsePrefix("fe80::/10"), "the link-local range"},
	{netip.MustParsePrefix("224.0.0.0/4"), "the multicast range"},
	{netip.MustParsePrefix("ff00::/8"), "the multicast range"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "the IPv4-mapped IPv6 range (give the IPv4 prefix)"},
}

// checkRouteNetwork validates a route's network and returns it with host
// bits cleared. An exit node is exactly 0.0.0.0/0 or ::/0; any other
// network (prefix length > 0) must not overlap the overlay range, the
// account's network, loopback, link-local, multicast or IPv4-mapped IPv6.
func checkRouteNetwork(a *model.Account, p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return p, Errorf(KindInvalid, "route network must be a valid prefix such as 10.20.0.0/24")
	}
	if p.Bits() == 0 {
		if p.Addr() != netip.IPv4Unspecified() && p.Addr() != netip.IPv6Unspecified() {
			return p, Errorf(KindInvalid, "route network %s: an exit node is 0.0.0.0/0 or ::/0", p)
		}
		return p, nil
	}
	p = p.Masked()
	if p.Overlaps(overlayRange) {
		return p, Errorf(KindInvalid, "route network %s overlaps the overlay range %s", p, overlayRange)
	}
	if a.Network.IsValid() && p.Overlaps(a.Network) {
		return p, Errorf(KindInvalid, "route network %s overlaps the account network %s", p, a.Network)
	}
	for _, r := range reservedNets {
		if p.Overlaps(r.pfx) {
			return p, Errorf(KindInvalid, "route network %s overlaps %s %s", p, r.what, r.pfx)
		}
	}
	return p, nil
}

func validateRoute(a *model.Account, r *model.Route) error {
	pfx, err := checkRouteNetwork(a, r.Network)
	if err != nil {
		return err
	}
	r.Network = pfx
	if (r.Peer == "") == (len(r.PeerGroups) == 0) {
		return Errorf(KindInvalid, "route needs exactly one of peer or peer_groups")
	}
	if r.Peer != "" && a.Peers[r.Peer] == nil {
		return Errorf(KindInvalid, "route peer %q: unknown peer", r.Peer)
	}
	if err := checkGroupRefs(a, "route peer_groups", r.PeerGroups, false); err != nil {
		return err
	}
	if err := checkGroupRefs(a, "route groups", r.Groups, true); err != nil {
		return err
	}
	if r.Metric < 0 || r.Metric > 9999 {
		return Errorf(KindInvalid, "route metric %d out of range 0-9999", r.Metric)
	}
	if err := checkDescription("route", &r.Description); err != nil {
		return err
	}
	if r.NetworkID == "" {
		r.NetworkID = r.Network.String()
	}
	return nil
}

func validateNameserverGroup(a *model.Account, n *model.NameserverGroup) error {
	name, err := checkName("nameserver group", n.Name)
	if err != nil {
		return err
	}
	n.Name = name
	if err := checkDescription("nameserver group", &n.Description); err != nil {
		return err
	}
	if len(n.Nameservers) == 0 {
		return Errorf(KindInvalid, "nameserver group %q needs at least one nameserver", n.Name)
	}
	for _, ns := range n.Nameservers {
		if !ns.IsValid() || ns.Port() == 0 || ns.Addr().IsUnspecified() {
			return Errorf(KindInvalid, "nameserver %q must be ip:port", ns)
		}
	}
	for i, d := range n.Domains {
		if !validDomain(d) {
			return Errorf(KindInvalid, "nameserver group domain %q is not a valid domain", d)
		}
		n.Domains[i] = normDomain(d)
	}
	if !n.Primary && len(n.Domains) == 0 {
		return Errorf(KindInvalid, "nameserver group %q: a non-primary group needs match domains", n.Name)
	}
	return checkGroupRefs(a, "nameserver group groups", n.Groups, true)
}

func validateZone(a *model.Account, z *model.DNSZone) error {
	if !validDomain(z.Domain) {
		return Errorf(KindInvalid, "zone domain %q is not a valid domain", z.Domain)
	}
	z.Domain = normDomain(z.Domain)
	if z.Domain == normDomain(a.Settings.DNSDomain) {
		return Errorf(KindConflict, "zone %q is the account's peer domain", z.Domain)
	}
	for _, other := range a.DNSZones {
		if other.ID != z.ID && other.Domain == z.Domain {
			return Errorf(KindConflict, "zone %q already exists", z.Domain)
		}
	}
	if len(z.Records) > MaxRecordsPerZone {
		return Errorf(KindInvalid, "zone %q has %d records; a zone may have at most %d", z.Domain, len(z.Records), MaxRecordsPerZone)
	}
	for i := range z.Records {
		r := &z.Records[i]
		r.Type = strings.ToUpper(strings.TrimSpace(r.Type))
		r.Name = strings.TrimSpace(r.Name)
		if r.Name == "" {
			r.Name = "@"
		}
		if r.Name != "@" && !validDomain(r.Name) {
			return Errorf(KindInvalid, "record name %q is not a valid name", r.Name)
		}
		switch r.Type {
		case "A":
			ip, err := netip.ParseAddr(r.Value)
			if err != nil || !ip.Is4() {
				return Errorf(KindInvalid, "A record %q: value %q is not an IPv4 address", r.Name, r.Value)
			}
		case "AAAA":
			ip, err := netip.ParseAddr(r.Value)
			if err != nil || !ip.Is6() || ip.Is4In6() {
				return Errorf(KindInvalid, "AAAA record %q: value %q is not an IPv6 address", r.Name, r.Value)
			}
		case "CNAME":
			if !validDomain(r.Value) {
				return Errorf(KindInvalid, "CNAME record %q: value %q is not a domain", r.Name, r.Value)
			}
		case "TXT":
			if r.Value == "" || len(r.Value) > 4000 {
				return Errorf(KindInvalid, "TXT record %q: value must be 1-4000 characters", r.Name)
			}
		default:
			return Errorf(KindInvalid, "record %q: unsupported type %q (want A, AAAA, CNAME or TXT)", r.Name, r.Type)
		}
		if r.TTL == 0 {
			r.TTL = 300
		}
	}
	return nil
}
