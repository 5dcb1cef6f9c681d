package policyfile

import (
	"fmt"
	"slices"
	"strings"

	"petrel/internal/printable"
)

// kindInfo is one kind of object apply manages; applyOrder is the order
// of creates and updates (groups first: the others reference them).
// Deletes go in the reverse order.
type kindInfo struct {
	name string // "group", in the plan's lines
	path string // REST collection
}

var (
	kindGroup      = &kindInfo{"group", "/api/groups"}
	kindSettings   = &kindInfo{"dns settings", "/api/dns/settings"}
	kindNameserver = &kindInfo{"nameserver group", "/api/dns/nameservers"}
	kindZone       = &kindInfo{"zone", "/api/dns/zones"}
	kindPolicy     = &kindInfo{"policy", "/api/policies"}
	kindRoute      = &kindInfo{"route", "/api/routes"}
	applyOrder     = []*kindInfo{kindGroup, kindSettings, kindNameserver, kindZone, kindPolicy, kindRoute}
)

// item is one object of a kind, from the file (desired) or the server
// (live), in canonical form.
type item struct {
	kind   *kindInfo
	key    string // identity within the kind
	label  string // shown after the kind
	id     string // live objects
	fields []field
	// body is a desired object's whole request body. groupID gives the ID
	// of a group by its name after apply; live is the object it updates
	// (nil on create).
	body func(groupID func(string) string, live *item) map[string]any
	// rules of a live policy, whose IDs an update keeps.
	rules []liveRule
	// implicit marks the All group (never deleted).
	implicit bool
}

func (it *item) title() string {
	if it.label == "" {
		return it.kind.name
	}
	return it.kind.name + " " + printable.Escape(it.label)
}

// ids maps canonical group references to IDs for a request body.
func ids(refs []ref, id func(string) string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, id(r.key))
	}
	return out
}

// refKeys is the peers' IDs of canonical peer references.
func refKeys(refs []ref) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.key)
	}
	return out
}

// --- groups ---

func groupItem(name string, peers []ref, managed bool) *item {
	it := &item{kind: kindGroup, key: strings.ToLower(name), label: name,
		fields: []field{scalarField("name", "name", name)}}
	if managed {
		it.fields = append(it.fields, refsField("peers", "peers", setMode, peers))
	}
	it.body = func(func(string) string, *item) map[string]any {
		b := map[string]any{"name": name}
		if managed {
			b["peers"] = refKeys(peers)
		}
		return b
	}
	return it
}

func fileGroupItem(g Group, n *names) (*item, []error) {
	name := strings.TrimSpace(g.Name)
	if name == "" {
		return nil, []error{fmt.Errorf("name is required")}
	}
	var peers []ref
	var errs []error
	if g.Peers != nil {
		if strings.EqualFold(name, "All") {
			return nil, []error{fmt.Errorf("the All group holds every peer and cannot list peers")}
		}
		peers, errs = n.peerRefs("peers", *g.Peers)
	}
	return groupItem(name, peers, g.Peers != nil), errs
}

func liveGroupItem(g liveGroup) *item {
	it := groupItem(g.Name, livePeerRefs(g.Peers), true)
	it.id, it.implicit = g.ID, g.Implicit
	return it
}

// --- policies ---

// ruleSpec is a policy rule in canonical form.
type ruleSpec struct {
	name, protocol, action string
	sources, destinations  []ref
	ports                  []string
	bidirectional          bool
}

func policyItem(name, description string, enabled bool, rules []ruleSpec) *item {
	it := &item{kind: kindPolicy, key: name, label: name, fields: []field{
		scalarField("name", "name", name), scalarField("description", "description", description),
		boolField("enabled", "enabled", enabled),
	}}
	for i, r := range rules {
		p := fmt.Sprintf("rules[%d].", i)
		it.fields = append(it.fields, scalarField(p+"name", "rules", r.name),
			refsField(p+"sources", "rules", setMode, r.sources), refsField(p+"destinations", "rules", setMode, r.destinations),
			scalarField(p+"protocol", "rules", r.protocol), stringsField(p+"ports", "rules", setMode, r.ports),
			boolField(p+"bidirectional", "rules", r.bidirectional), scalarField(p+"action", "rules", r.action))
	}
	it.body = func(groupID func(string) string, live *item) map[string]any {
		out := make([]map[string]any, 0, len(rules))
		for i, r := range rules {
			rb := map[string]any{
				"name": r.name, "sources": ids(r.sources, groupID), "destinations": ids(r.destinations, groupID),
				"protocol": r.protocol, "ports": r.ports, "bidirectional": r.bidirectional, "action": r.action,
			}
			if live != nil {
				if id := keptRuleID(live.rules, i, r.name); id != "" {
					rb["id"] = id
				}
			}
			out = append(out, rb)
		}
		return map[string]any{"name": name, "description": description, "enabled": enabled, "rules": out}
	}
	return it
}

// keptRuleID is the ID an updated rule keeps: the live rule at the same
// place with the same name, else the only live rule with that name.
func keptRuleID(live []liveRule, i int, name string) string {
	if i < len(live) && live[i].Name == name {
		return live[i].ID
	}
	if name == "" {
		return ""
	}
	var found []string
	for _, r := range live {
		if r.Name == name {
			found = append(found, r.ID)
		}
	}
	if len(found) == 1 {
		return found[0]
	}
	return ""
}

func filePolicyItem(p Policy, n *names) (*item, []error) {
	name := strings.TrimSpace(p.Name)
	var errs []error
	if name == "" {
		errs = append(errs, fmt.Errorf("name is required"))
	}
	if len(p.Rules) == 0 {
		errs = append(errs, fmt.Errorf("rules: at least one rule is required"))
	}
	var rules []ruleSpec
	for i, fr := range p.Rules {
		at := func(err error) error { return fmt.Errorf("rules[%d]: %w", i, err) }
		r := ruleSpec{name: strings.TrimSpace(fr.Name), bidirectional: fr.Bidirectional}
		var err error
		if r.protocol, err = oneOf("protocol", fr.Protocol, "all", "all", "tcp", "udp", "icmp"); err != nil {
			errs = append(errs, at(err))
		}
		if r.action, err = oneOf("action", fr.Action, "accept", "accept", "drop"); err != nil {
			errs = append(errs, at(err))
		}
		if r.ports, err = canonicalPorts(fr.Ports); err != nil {
			errs = append(errs, at(err))
		}
		if len(r.ports) > 0 && r.protocol != "tcp" && r.protocol != "udp" {
			errs = append(errs, at(fmt.Errorf("ports need protocol tcp or udp, not %s", r.protocol)))
		}
		if len(fr.Sources) == 0 || len(fr.Destinations) == 0 {
			errs = append(errs, at(fmt.Errorf("sources and destinations each need at least one group")))
		}
		var e1, e2 []error
		r.sources, e1 = n.groups("sources", fr.Sources)
		r.destinations, e2 = n.groups("destinations", fr.Destinations)
		for _, e := range append(e1, e2...) {
			errs = append(errs, at(e))
		}
		rules = append(rules, r)
	}
	return policyItem(name, p.Description, p.Enabled == nil || *p.Enabled, rules), errs
}

func livePolicyItem(p livePolicy, n *names) *item {
	rules := make([]ruleSpec, 0, len(p.Rules))
	for _, r := range p.Rules {
		rules = append(rules, ruleSpec{name: r.Name, protocol: r.Protocol, action: r.Action,
			sources: n.liveGroups(r.Sources), destinations: n.liveGroups(r.Destinations),
			ports: r.Ports, bidirectional: r.Bidirectional})
	}
	it := policyItem(p.Name, p.Description, p.Enabled, rules)
	it.id, it.rules = p.ID, p.Rules
	return it
}

// --- routes ---

// routeSpec is a route in canonical form. A route is identified by its
// network and who routes it: its peer, or (one route per network) peer
// groups.
type routeSpec struct {
	network, networkID, description string
	peer                            *ref
	peerGroups, groups              []ref
	metric                          int
	masquerade, enabled, autoApply  bool
}

func routeItem(r routeSpec) *item {
	it := &item{kind: kindRoute, key: r.network + " groups", label: r.network + " via peer groups"}
	if r.peer != nil {
		it.key, it.label = r.network+" peer "+r.peer.key, r.network+" via "+r.peer.name
	}
	it.fields = []field{scalarField("network", "network", r.network)}
	if r.peer != nil {
		it.fields = append(it.fields, field{name: "peer", member: "peer", vals: []string{r.peer.key}, show: []string{r.peer.name}})
	} else {
		it.fields = append(it.fields, refsField("peer_groups", "peer_groups", setMode, r.peerGroups))
	}
	it.fields = append(it.fields, refsField("groups", "groups", setMode, r.groups),
		scalarField("network_id", "network_id", r.networkID), scalarField("description", "description", r.description),
		scalarField("metric", "metric", fmt.Sprint(r.metric)), boolField("masquerade", "masquerade", r.masquerade),
		boolField("enabled", "enabled", r.enabled), boolField("auto_apply", "auto_apply", r.autoApply))
	it.body = func(groupID func(string) string, _ *item) map[string]any {
		b := map[string]any{
			"network": r.network, "network_id": r.networkID, "description": r.description, "groups": ids(r.groups, groupID),
			"metric": r.metric, "masquerade": r.masquerade, "enabled": r.enabled, "auto_apply": r.autoApply,
		}
		if r.peer != nil {
			b["peer"] = r.peer.key
		} else {
			b["peer_groups"] = ids(r.peerGroups, groupID)
		}
		return b
	}
	return it
}

func fileRouteItem(fr Route, n *names) (*item, []error) {
	var errs []error
	r := routeSpec{description: fr.Description, metric: fr.Metric, masquerade: fr.Masquerade,
		enabled: fr.Enabled == nil || *fr.Enabled, autoApply: fr.AutoApply}
	var err error
	if r.network, err = canonicalNetwork(fr.Network); err != nil {
		errs = append(errs, err)
	}
	if r.networkID = strings.TrimSpace(fr.NetworkID); r.networkID == "" {
		r.networkID = r.network
	}
	if fr.Metric < 0 || fr.Metric > 9999 {
		errs = append(errs, fmt.Errorf("metric must be between 0 and 9999"))
	}
	switch {
	case (fr.Peer == "") == (len(fr.PeerGroups) == 0):
		errs = append(errs, fmt.Errorf("give exactly one of peer (a routing peer) and peer_groups"))
	case fr.Peer != "":
		p, err := n.peer(fr.Peer)
		if err != nil {
			errs = append(errs, fmt.Errorf("peer: %w", err))
			p = ref{name: fr.Peer}
		}
		r.peer = &p
	default:
		var e []error
		r.peerGroups, e = n.groups("peer_groups", fr.PeerGroups)
		errs = append(errs, e...)
	}
	if len(fr.Groups) == 0 {
		errs = append(errs, fmt.Errorf("groups: at least one distribution group is required (e.g. All)"))
	}
	var e []error
	r.groups, e = n.groups("groups", fr.Groups)
	return routeItem(r), append(errs, e...)
}

func liveRouteItem(lr liveRoute, n *names) *item {
	r := routeSpec{network: lr.Network, networkID: lr.NetworkID, description: lr.Description,
		peerGroups: n.liveGroups(lr.PeerGroups), groups: n.liveGroups(lr.Groups), metric: lr.Metric,
		masquerade: lr.Masquerade, enabled: lr.Enabled, autoApply: lr.AutoApply}
	if lr.Peer != nil {
		r.peer = &ref{key: lr.Peer.ID, name: lr.Peer.Name}
	}
	it := routeItem(r)
	it.id = lr.ID
	return it
}

// --- DNS ---

func nameserverItem(name, description string, servers, domains []string, primary bool, groups []ref, enabled bool) *item {
	it := &item{kind: kindNameserver, key: name, label: name, fields: []field{
		scalarField("name", "name", name), scalarField("description", "description", description),
		stringsField("nameservers", "nameservers", listMode, servers), stringsField("domains", "domains", setMode, domains),
		boolField("primary", "primary", primary), refsField("groups", "groups", setMode, groups),
		boolField("enabled", "enabled", enabled),
	}}
	it.body = func(groupID func(string) string, _ *item) map[string]any {
		return map[string]any{"name": name, "description": description, "nameservers": servers, "domains": domains,
			"primary": primary, "groups": ids(groups, groupID), "enabled": enabled}
	}
	return it
}

func fileNameserverItem(f Nameserver, n *names) (*item, []error) {
	var errs []error
	name := strings.TrimSpace(f.Name)
	if name == "" {
		errs = append(errs, fmt.Errorf("name is required"))
	}
	if len(f.Nameservers) == 0 {
		errs = append(errs, fmt.Errorf("nameservers: at least one is required"))
	}
	servers := []string{}
	for i, s := range f.Nameservers {
		c, err := canonicalNameserver(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("nameservers[%d]: %w", i, err))
		}
		servers = append(servers, c)
	}
	domains := []string{}
	for i, d := range f.Domains {
		if d = canonicalDomain(d); d == "" {
			errs = append(errs, fmt.Errorf("domains[%d]: empty domain", i))
		}
		domains = append(domains, d)
	}
	if !f.Primary && len(domains) == 0 {
		errs = append(errs, fmt.Errorf("a nameserver group needs primary: true or at least one match domain"))
	}
	if len(f.Groups) == 0 {
		errs = append(errs, fmt.Errorf("groups: at least one group is required (e.g. All)"))
	}
	groups, e := n.groups("groups", f.Groups)
	return nameserverItem(name, f.Description, servers, domains, f.Primary, groups, f.Enabled == nil || *f.Enabled), append(errs, e...)
}

func liveNameserverItem(l liveNameserver, n *names) *item {
	it := nameserverItem(l.Name, l.Description, l.Nameservers, l.Domains, l.Primary, n.liveGroups(l.Groups), l.Enabled)
	it.id = l.ID
	return it
}

func recordText(r Record) string {
	return fmt.Sprintf("%s %d %s %s", r.Name, r.TTL, r.Type, r.Value)
}

func zoneItem(domain string, records []Record) *item {
	texts := make([]string, 0, len(records))
	for _, r := range records {
		texts = append(texts, recordText(r))
	}
	it := &item{kind: kindZone, key: domain, label: domain, fields: []field{
		scalarField("domain", "domain", domain), stringsField("records", "records", setMode, texts),
	}}
	it.body = func(func(string) string, *item) map[string]any {
		return map[string]any{"domain": domain, "records": records}
	}
	return it
}

func fileZoneItem(z Zone) (*item, []error) {
	var errs []error
	domain := canonicalDomain(z.Domain)
	if domain == "" {
		errs = append(errs, fmt.Errorf("domain is required"))
	}
	records := []Record{}
	for i, r := range z.Records {
		c, err := canonicalRecord(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("records[%d]: %w", i, err))
		}
		records = append(records, c)
	}
	return zoneItem(domain, records), errs
}

func liveZoneItem(z liveZone) *item {
	it := zoneItem(z.Domain, z.Records)
	it.id = z.ID
	return it
}

func settingsItem(domain string) *item {
	return &item{kind: kindSettings, key: "settings", label: "", fields: []field{scalarField("dns_domain", "dns_domain", domain)},
		body: func(func(string) string, *item) map[string]any { return map[string]any{"dns_domain": domain} }}
}

// byKey groups items by key.
func byKey(items []*item) map[string][]*item {
	m := map[string][]*item{}
	for _, it := range items {
		m[it.key] = append(m[it.key], it)
	}
	return m
}

// liveIDs lists the IDs of items, sorted.
func liveIDs(items []*item) string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.id)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
