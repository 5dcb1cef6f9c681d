package policyfile

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// collect builds the desired items of the sections the file has and the
// live items of the same kinds. The problems name their place in the file.
func collect(pf *File, ls *Live, n *names) (want, have map[*kindInfo][]*item, errs []error) {
	want, have = map[*kindInfo][]*item{}, map[*kindInfo][]*item{}
	add := func(k *kindInfo, section string, i int, it *item, e []error) {
		for _, err := range e {
			errs = append(errs, fmt.Errorf("%s[%d] %q: %w", section, i, it.label, err))
		}
		want[k] = append(want[k], it)
	}
	if pf.Groups != nil {
		want[kindGroup] = []*item{}
		for i, g := range *pf.Groups {
			it, e := fileGroupItem(g, n)
			if it == nil {
				it = &item{kind: kindGroup, label: g.Name}
			}
			add(kindGroup, "groups", i, it, e)
		}
		for _, g := range ls.groups {
			have[kindGroup] = append(have[kindGroup], liveGroupItem(g))
		}
	}
	if pf.Policies != nil {
		want[kindPolicy] = []*item{}
		for i, fp := range *pf.Policies {
			it, e := filePolicyItem(fp, n)
			add(kindPolicy, "policies", i, it, e)
		}
		for _, lp := range ls.policies {
			have[kindPolicy] = append(have[kindPolicy], livePolicyItem(lp, n))
		}
	}
	if pf.Routes != nil {
		want[kindRoute] = []*item{}
		for i, fr := range *pf.Routes {
			it, e := fileRouteItem(fr, n)
			add(kindRoute, "routes", i, it, e)
		}
		for _, lr := range ls.routes {
			have[kindRoute] = append(have[kindRoute], liveRouteItem(lr, n))
		}
	}
	if pf.DNS == nil {
		return want, have, errs
	}
	if s := pf.DNS.Settings; s != nil {
		d := canonicalDomain(s.DNSDomain)
		if d == "" {
			errs = append(errs, errors.New("dns.settings.dns_domain is required"))
		}
		want[kindSettings] = []*item{settingsItem(d)}
		have[kindSettings] = []*item{settingsItem(ls.settings.DNSDomain)}
	}
	if pf.DNS.Nameservers != nil {
		want[kindNameserver] = []*item{}
		for i, f := range *pf.DNS.Nameservers {
			it, e := fileNameserverItem(f, n)
			add(kindNameserver, "dns.nameservers", i, it, e)
		}
		for _, l := range ls.nameservers {
			have[kindNameserver] = append(have[kindNameserver], liveNameserverItem(l, n))
		}
	}
	if pf.DNS.Zones != nil {
		want[kindZone] = []*item{}
		for i, z := range *pf.DNS.Zones {
			it, e := fileZoneItem(z)
			add(kindZone, "dns.zones", i, it, e)
		}
		for _, z := range ls.zones {
			have[kindZone] = append(have[kindZone], liveZoneItem(z))
		}
	}
	return want, have, errs
}

// checkPrunedGroups refuses to prune a group that an object apply leaves
// alone still uses: a setup key, or an object of a section the file does
// not have. (The server would refuse the delete halfway through.)
func checkPrunedGroups(pf *File, ls *Live, deletes []Change) []error {
	users := map[string][]string{} // group ID → users
	use := func(who string, refs []liveRef) {
		for _, r := range refs {
			users[r.ID] = append(users[r.ID], who)
		}
	}
	for _, k := range ls.setupKeys {
		use(fmt.Sprintf("setup key %q", k.Name), k.AutoGroups)
	}
	if pf.Policies == nil {
		for _, p := range ls.policies {
			for _, r := range p.Rules {
				use(fmt.Sprintf("policy %q", p.Name), append(slices.Clone(r.Sources), r.Destinations...))
			}
		}
	}
	if pf.Routes == nil {
		for _, r := range ls.routes {
			use(fmt.Sprintf("route %s", r.Network), append(slices.Clone(r.PeerGroups), r.Groups...))
		}
	}
	if pf.DNS == nil || pf.DNS.Nameservers == nil {
		for _, ns := range ls.nameservers {
			use(fmt.Sprintf("nameserver group %q", ns.Name), ns.Groups)
		}
	}
	var errs []error
	for _, d := range deletes {
		if d.have.kind != kindGroup || len(users[d.have.id]) == 0 {
			continue
		}
		who := slices.Compact(users[d.have.id])
		errs = append(errs, fmt.Errorf("group %q is not in the file, but --prune cannot delete it: %s uses it (add the group to the file, or change %s first)",
			d.have.label, strings.Join(who, ", "), who[0]))
	}
	return errs
}
