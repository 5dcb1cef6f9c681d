package ui

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"petrel/management/model"
)

// nsRow is one nameserver group as the DNS page shows it.
type nsRow struct {
	ID, Name, Description string
	Nameservers           []string
	Domains               []string
	Primary, Enabled      bool
	Groups                []string
}

// recordRow is one record of a custom zone; Sum identifies it in the
// delete form (with its index) so a changed zone is not edited blindly.
type recordRow struct {
	Index                  int
	Name, Type, Value, Sum string
	TTL                    uint32
}

type zoneRow struct {
	ID, Domain string
	Records    []recordRow
}

// nsForm is the nameserver group form as submitted or loaded.
type nsForm struct {
	ID, Name, Description string
	Nameservers, Domains  string // separated by spaces or commas
	Primary, Enabled      bool
	Groups                []option
}

type dnsData struct {
	Domain    string // the peers' DNS domain
	NS        []nsRow
	Zones     []zoneRow
	NSForm    nsForm
	EditingNS bool
	Types     []string
}

var recordTypes = []string{"A", "AAAA", "CNAME", "TXT"}

// recordSum is a short digest of a record, to recognise it in a later
// request.
func recordSum(r model.DNSRecord) string {
	h := sha256.New()
	for _, s := range []string{r.Name, r.Type, r.Value, strconv.FormatUint(uint64(r.TTL), 10)} {
		h.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func newNSForm(a *model.Account, n *model.NameserverGroup) nsForm {
	if n == nil {
		return nsForm{Enabled: true, Groups: groupOptions(a)}
	}
	f := nsForm{ID: n.ID, Name: display(n.Name), Description: display(n.Description), Domains: display(strings.Join(n.Domains, " ")),
		Primary: n.Primary, Enabled: n.Enabled, Groups: groupOptions(a, n.Groups...)}
	var ns []string
	for _, ap := range n.Nameservers {
		ns = append(ns, ap.String())
	}
	f.Nameservers = strings.Join(ns, " ")
	return f
}

func (h *Handler) dnsData(rq *req, form nsForm) dnsData {
	a := rq.acct
	d := dnsData{Domain: display(domain(a)), NSForm: form, Types: recordTypes}
	for _, n := range a.NameserverGroups {
		row := nsRow{ID: n.ID, Name: display(n.Name), Description: display(n.Description), Primary: n.Primary,
			Enabled: n.Enabled, Groups: groupNames(a, n.Groups)}
		for _, ap := range n.Nameservers {
			row.Nameservers = append(row.Nameservers, ap.String())
		}
		for _, dom := range n.Domains {
			row.Domains = append(row.Domains, display(dom))
		}
		d.NS = append(d.NS, row)
	}
	slices.SortFunc(d.NS, func(a, b nsRow) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	for _, z := range a.DNSZones {
		row := zoneRow{ID: z.ID, Domain: display(z.Domain)}
		for i, r := range z.Records {
			row.Records = append(row.Records, recordRow{Index: i, Name: display(r.Name), Type: display(r.Type),
				Value: display(r.Value), TTL: r.TTL, Sum: recordSum(r)})
		}
		d.Zones = append(d.Zones, row)
	}
	slices.SortFunc(d.Zones, func(a, b zoneRow) int { return cmp.Or(cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.ID, b.ID)) })
	return d
}

func (h *Handler) dns(rq *req) error {
	h.render(rq, http.StatusOK, "dns", "DNS", h.dnsData(rq, newNSForm(rq.acct, nil)))
	return nil
}

// dnsError shows the DNS page (or the nameserver group form being
// edited) with err.
func (h *Handler) dnsError(rq *req, err error, form nsForm) error {
	status, fl := errFlash(err)
	if form.ID != "" {
		h.render(rq, status, "dns", "Edit nameserver group", dnsData{NSForm: form, EditingNS: true}, fl)
		return nil
	}
	h.render(rq, status, "dns", "DNS", h.dnsData(rq, form), fl)
	return nil
}

// parseForm reads a posted form (bounded).
func parseForm(rq *req) error {
	rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, maxFormBytes)
	if err := rq.r.ParseForm(); err != nil {
		return badInput("unreadable form: %v", err)
	}
	return nil
}

// fields splits a list typed with spaces, commas or new lines.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// updateDNSSettings changes the peers' DNS domain; the other settings keep
// their value, as PUT /api/dns/settings does. The service checks the name.
func (h *Handler) updateDNSSettings(rq *req) error {
	if err := parseForm(rq); err != nil {
		return h.dnsError(rq, err, newNSForm(rq.acct, nil))
	}
	set := rq.acct.Settings
	set.DNSDomain = strings.TrimSpace(rq.r.PostForm.Get("dns_domain"))
	if set.DNSDomain == "" {
		return h.dnsError(rq, badInput("DNS domain is required"), newNSForm(rq.acct, nil))
	}
	if err := h.svc.UpdateSettings(rq.ctx(), rq.acct.ID, set); err != nil {
		return h.dnsError(rq, err, newNSForm(rq.acct, nil))
	}
	a, err := h.svc.Snapshot(rq.acct.ID)
	if err != nil {
		return err
	}
	return h.done(rq, "/ui/dns", "Peers' DNS domain is now "+display(domain(a))+".")
}

// nsFromForm turns the posted form into a nameserver group for the
// service, which checks it; only the addresses are parsed here.
func nsFromForm(rq *req, id string) (*model.NameserverGroup, nsForm, error) {
	form := nsForm{ID: id}
	if err := parseForm(rq); err != nil {
		form.Groups = groupOptions(rq.acct)
		return nil, form, err
	}
	pf := rq.r.PostForm
	n := &model.NameserverGroup{ID: id, Name: pf.Get("name"), Description: pf.Get("description"), Domains: fields(pf.Get("domains")),
		Primary: pf.Get("primary") == "on", Enabled: pf.Get("enabled") == "on", Groups: pf["groups"]}
	// The form shown again if refused: what was typed, legible.
	form.Name, form.Description = display(n.Name), display(n.Description)
	form.Nameservers, form.Domains = display(pf.Get("nameservers")), display(pf.Get("domains"))
	form.Primary, form.Enabled = n.Primary, n.Enabled
	form.Groups = groupOptions(rq.acct, n.Groups...)
	for _, s := range fields(pf.Get("nameservers")) {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, form, badInput("nameserver %q: want an IP address, optionally with :port (53 when omitted)", display(s))
			}
			ap = netip.AddrPortFrom(a, 53)
		}
		n.Nameservers = append(n.Nameservers, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return n, form, nil
}

func (h *Handler) putNS(rq *req, id string) error {
	n, form, err := nsFromForm(rq, id)
	if err == nil {
		var obj model.Object
		if obj, err = h.svc.Put(rq.ctx(), rq.acct.ID, n); err == nil {
			verb := "Created"
			if id != "" {
				verb = "Saved"
			}
			return h.done(rq, "/ui/dns", verb+" nameserver group "+display(obj.(*model.NameserverGroup).Name)+".")
		}
	}
	return h.dnsError(rq, err, form)
}

func (h *Handler) createNS(rq *req) error { return h.putNS(rq, "") }

func (h *Handler) updateNS(rq *req) error {
	id := rq.r.PathValue("id")
	if rq.acct.NameserverGroups[id] == nil {
		return h.dnsError(rq, notFound("nameserver group %q not found", id), newNSForm(rq.acct, nil))
	}
	return h.putNS(rq, id)
}

// editNS shows the form of one nameserver group.
func (h *Handler) editNS(rq *req) error {
	n := rq.acct.NameserverGroups[rq.r.PathValue("id")]
	if n == nil {
		return notFound("nameserver group %q not found", rq.r.PathValue("id"))
	}
	h.render(rq, http.StatusOK, "dns", "Edit nameserver group", dnsData{NSForm: newNSForm(rq.acct, n), EditingNS: true})
	return nil
}

// dnsFail shows the DNS page with err (for the handlers of one object).
func (h *Handler) dnsFail(rq *req) func(error) error {
	return func(err error) error { return h.dnsError(rq, err, newNSForm(rq.acct, nil)) }
}

func (h *Handler) deleteNS(rq *req) error {
	fail := h.dnsFail(rq)
	n := rq.acct.NameserverGroups[rq.r.PathValue("id")]
	if n == nil {
		return fail(notFound("nameserver group %q not found", rq.r.PathValue("id")))
	}
	name := display(n.Name)
	return h.change(rq, oneChange{back: "/ui/dns", fail: fail,
		confirm: &confirmDeleteData{Title: "Delete nameserver group " + name + "?", Items: []string{name},
			Note: "Peers stop using these nameservers at once.", Action: "/ui/dns/nameservers/" + n.ID + "/delete", Cancel: "/ui/dns"},
		apply: func() (string, error) {
			return "Deleted nameserver group " + name + ".", h.svc.Delete(rq.ctx(), rq.acct.ID, model.KindNameserverGroup, n.ID)
		}})
}

func (h *Handler) createZone(rq *req) error {
	if err := parseForm(rq); err != nil {
		return h.dnsError(rq, err, newNSForm(rq.acct, nil))
	}
	dom := strings.TrimSpace(rq.r.PostForm.Get("domain"))
	if dom == "" {
		return h.dnsError(rq, badInput("domain is required"), newNSForm(rq.acct, nil))
	}
	obj, err := h.svc.Put(rq.ctx(), rq.acct.ID, &model.DNSZone{Domain: dom})
	if err != nil {
		return h.dnsError(rq, err, newNSForm(rq.acct, nil))
	}
	return h.done(rq, "/ui/dns", "Created zone "+display(obj.(*model.DNSZone).Domain)+".")
}

func (h *Handler) deleteZone(rq *req) error {
	fail := h.dnsFail(rq)
	z := rq.acct.DNSZones[rq.r.PathValue("id")]
	if z == nil {
		return fail(notFound("zone %q not found", rq.r.PathValue("id")))
	}
	dom := display(z.Domain)
	return h.change(rq, oneChange{back: "/ui/dns", fail: fail,
		confirm: &confirmDeleteData{Title: "Delete zone " + dom + "?",
			Items:  []string{dom + " and its " + strconv.Itoa(len(z.Records)) + " record(s)"},
			Action: "/ui/dns/zones/" + z.ID + "/delete", Cancel: "/ui/dns"},
		apply: func() (string, error) {
			return "Deleted zone " + dom + ".", h.svc.Delete(rq.ctx(), rq.acct.ID, model.KindDNSZone, z.ID)
		}})
}

// addRecord adds one record to the zone as it is when the service commits
// (records others add meanwhile stay); the service checks the record
// (name, type, value, TTL, not a duplicate) and the zone's size.
func (h *Handler) addRecord(rq *req) error {
	fail := h.dnsFail(rq)
	z := rq.acct.DNSZones[rq.r.PathValue("id")]
	if z == nil {
		return fail(notFound("zone %q not found", rq.r.PathValue("id")))
	}
	if err := parseForm(rq); err != nil {
		return fail(err)
	}
	pf := rq.r.PostForm
	rec := model.DNSRecord{Name: pf.Get("name"), Type: pf.Get("type"), Value: pf.Get("value")}
	if v := strings.TrimSpace(pf.Get("ttl")); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fail(badInput("TTL %q: want a number of seconds", display(v)))
		}
		rec.TTL = uint32(n)
	}
	if _, err := h.svc.AddZoneRecord(rq.ctx(), rq.acct.ID, z.ID, rec); err != nil {
		return fail(err)
	}
	return h.done(rq, "/ui/dns", "Added a record to zone "+display(z.Domain)+".")
}

// deleteRecord removes one record after a confirmation page. The form
// names the record by index and digest as the page showed it, so a zone
// changed meanwhile is not edited blindly; the service then removes the
// record with that content from the zone as it is when it commits.
func (h *Handler) deleteRecord(rq *req) error {
	fail := h.dnsFail(rq)
	z := rq.acct.DNSZones[rq.r.PathValue("id")]
	if z == nil {
		return fail(notFound("zone %q not found", rq.r.PathValue("id")))
	}
	if err := parseForm(rq); err != nil {
		return fail(err)
	}
	pf := rq.r.PostForm
	i, err := strconv.Atoi(pf.Get("index"))
	if err != nil || i < 0 || i >= len(z.Records) || recordSum(z.Records[i]) != pf.Get("sum") {
		return fail(notFound("record not found in zone %s (changed meanwhile? reload the page)", display(z.Domain)))
	}
	r := z.Records[i]
	what := display(r.Name) + " " + display(r.Type) + " " + display(r.Value)
	return h.change(rq, oneChange{back: "/ui/dns", fail: fail,
		confirm: &confirmDeleteData{Title: "Delete a record of " + display(z.Domain) + "?", Items: []string{what},
			Action: "/ui/dns/zones/" + z.ID + "/records/delete", Cancel: "/ui/dns",
			Fields: []field{{"index", strconv.Itoa(i)}, {"sum", pf.Get("sum")}}},
		apply: func() (string, error) {
			_, err := h.svc.DeleteZoneRecord(rq.ctx(), rq.acct.ID, z.ID, r)
			return "Deleted a record of zone " + display(z.Domain) + ".", err
		}})
}
