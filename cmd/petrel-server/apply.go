package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

func newApplyCmd() *cobra.Command {
	var f clientFlags
	var file string
	var dryRun, prune bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--dry-run] [--prune]",
		Short: "Make groups, policies, routes and DNS what a declarative file says",
		Long: `Apply reads a YAML or JSON file of groups, policies, routes and DNS
(nameserver groups, zones, settings), keyed by name, compares it with the
live state and prints the difference: + create, ~ update (the fields that
change), - delete. With --dry-run it stops there. Otherwise it applies the
changes in dependency order (groups first, deletes last and in reverse)
and reports each step; the first failure stops it, and it says which steps
were applied and which were not.

A section left out of the file is not managed. Objects on the server that
the file's sections do not list are kept, unless --prune deletes them. The
file refers to groups and peers by name. Problems in the file, including
references to groups or peers that do not exist, are reported before
anything changes (exit status 2). See docs/server-cli.md and
docs/examples/policy.yaml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageError{errors.New("-f FILE is required (a policy file; - for stdin)")}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			pf, err := loadPolicyFile(file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			ls, err := fetchLive(cmd.Context(), c)
			if err != nil {
				return err
			}
			p, err := makePlan(pf, ls, prune)
			if err != nil {
				return usageError{fmt.Errorf("%s: nothing was changed:\n%w", file, err)}
			}
			out := cmd.OutOrStdout()
			pal := palette{on: useColor(out, os.Getenv)}
			printChanges(out, p.changes, pal)
			p.printKept(out)
			if len(p.changes) == 0 {
				_, err := fmt.Fprintln(out, "no changes")
				return err
			}
			fmt.Fprintln(out, p.summary(false))
			if dryRun {
				_, err := fmt.Fprintln(out, "dry run: nothing was changed")
				return err
			}
			return p.apply(cmd.Context(), c, out)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", "the policy file, YAML or JSON (- for stdin) (required)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the changes and stop")
	fl.BoolVar(&prune, "prune", false, "also delete the objects of the file's sections that the file does not list")
	return cmd
}

type opKind int

const (
	opCreate opKind = iota
	opUpdate
	opDelete
)

// change is one step of a plan.
type change struct {
	op    opKind
	want  *item // create, update
	have  *item // update, delete
	diffs []fieldDiff
}

func (c change) String() string {
	switch c.op {
	case opCreate:
		return "create " + c.want.title()
	case opUpdate:
		return "update " + c.have.title()
	}
	return "delete " + c.have.title()
}

// plan is what apply does, in order.
type plan struct {
	changes []change
	kept    []*item // not in the file, not pruned
	// groupIDs maps the names of groups after apply to their IDs; apply
	// adds the groups it creates.
	groupIDs map[string]string
}

// summary counts the changes: "2 to create, ..." or, done, "2 created, ...".
func (p *plan) summary(done bool) string {
	var n [3]int
	for _, c := range p.changes {
		n[c.op]++
	}
	if done {
		return fmt.Sprintf("%d created, %d updated, %d deleted", n[opCreate], n[opUpdate], n[opDelete])
	}
	return fmt.Sprintf("%d to create, %d to update, %d to delete", n[opCreate], n[opUpdate], n[opDelete])
}

func (p *plan) printKept(w io.Writer) {
	if len(p.kept) == 0 {
		return
	}
	titles := make([]string, 0, len(p.kept))
	for _, it := range p.kept {
		titles = append(titles, it.title())
	}
	fmt.Fprintf(w, "not in the file, kept (--prune deletes them): %s\n", strings.Join(titles, ", "))
}

// makePlan compares the file with the live state. Every problem of the
// file is reported, joined; then nothing may be changed.
func makePlan(pf *policyFile, ls *liveState, prune bool) (*plan, error) {
	n := newNames(ls, pf, prune)
	want, have, errs := collect(pf, ls, n)
	p := &plan{groupIDs: n.liveID}
	var deletes []change
	for _, k := range applyOrder {
		w, managed := want[k]
		if !managed {
			continue
		}
		live := byKey(have[k])
		seen := map[string]int{}
		for i, it := range w {
			if j, dup := seen[it.key]; dup {
				errs = append(errs, fmt.Errorf("%s %q is listed twice (entries %d and %d of its section)", k.name, it.label, j, i))
				continue
			}
			seen[it.key] = i
			switch h := live[it.key]; {
			case len(h) > 1:
				errs = append(errs, fmt.Errorf("%s %q: %d of them exist on the server (ids %s); delete or rename all but one first",
					k.name, it.label, len(h), liveIDs(h)))
			case len(h) == 0:
				p.changes = append(p.changes, change{op: opCreate, want: it})
			default:
				if err := compare(p, it, h[0]); err != nil {
					errs = append(errs, err)
				}
			}
		}
		var gone []change
		for _, h := range have[k] {
			if _, listed := seen[h.key]; listed || h.implicit || k == kindSettings {
				continue
			}
			if !prune {
				p.kept = append(p.kept, h)
				continue
			}
			gone = append(gone, change{op: opDelete, have: h})
		}
		deletes = append(gone, deletes...)
	}
	errs = append(errs, checkPrunedGroups(pf, ls, deletes)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.changes = append(p.changes, deletes...)
	return p, nil
}

// compare adds the update of have to want, if they differ.
func compare(p *plan, want, have *item) error {
	if have.implicit && want.label != have.label {
		return fmt.Errorf("group %q: the All group cannot be renamed", want.label)
	}
	hf := have.fields
	if want.kind == kindGroup && !slices.ContainsFunc(want.fields, func(f field) bool { return f.name == "peers" }) {
		// Membership not managed by the file.
		hf = slices.DeleteFunc(slices.Clone(hf), func(f field) bool { return f.name == "peers" })
	}
	if d := diffFields(want.fields, hf); len(d) > 0 {
		p.changes = append(p.changes, change{op: opUpdate, want: want, have: have, diffs: d})
	}
	return nil
}

// collect builds the desired items of the sections the file has and the
// live items of the same kinds. The problems name their place in the file.
func collect(pf *policyFile, ls *liveState, n *names) (want, have map[*kindInfo][]*item, errs []error) {
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
func checkPrunedGroups(pf *policyFile, ls *liveState, deletes []change) []error {
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
