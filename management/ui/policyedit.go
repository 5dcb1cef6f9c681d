package ui

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"petrel/management/model"
)

// Creating, editing and deleting policies. The form carries the policy's
// fields and its rules as numbered field sets (rule_id_N, rule_name_N,
// src_N, dst_N, proto_N, ports_N, bidir_N, action_N, remove_N for N < the
// posted "rules" count) plus one blank set for adding a rule; the service
// validates the result (names, group references, ports by protocol).

// maxFormRules bounds the rule sets read from a form.
const maxFormRules = 200

// ruleForm is one rule's field set as shown (or as posted, when refused).
type ruleForm struct {
	N             int
	ID, Name      string
	Sources       []option
	Dests         []option
	Protos        []option
	Ports         string
	Bidirectional bool
	Drop          bool
	Blank         bool // the set for adding a rule
}

type policyForm struct {
	ID, Name, Description string
	Enabled               bool
	Rules                 []ruleForm
	Count                 int // rule sets in the form
}

func newRuleForm(a *model.Account, n int, r model.PolicyRule, blank bool) ruleForm {
	f := ruleForm{N: n, ID: r.ID, Name: display(r.Name), Sources: groupOptions(a, r.Sources...),
		Dests: groupOptions(a, r.Destinations...), Ports: strings.Join(formatPorts(r.Ports), ", "),
		Bidirectional: r.Bidirectional, Drop: r.Action == model.ActionDrop, Blank: blank}
	proto := r.Protocol
	if proto == "" {
		proto = model.ProtoAll
	}
	for _, p := range protocols {
		f.Protos = append(f.Protos, option{Value: string(p), Label: string(p), Selected: p == proto})
	}
	return f
}

// newPolicyForm is the form for p (nil: a new policy), with a blank rule
// set at the end.
func newPolicyForm(a *model.Account, p *model.Policy) policyForm {
	f := policyForm{Enabled: true}
	var rules []model.PolicyRule
	if p != nil {
		f = policyForm{ID: p.ID, Name: display(p.Name), Description: display(p.Description), Enabled: p.Enabled}
		rules = p.Rules
	}
	for i, r := range rules {
		f.Rules = append(f.Rules, newRuleForm(a, i, r, false))
	}
	f.Rules = append(f.Rules, newRuleForm(a, len(rules), model.PolicyRule{Bidirectional: true}, true))
	f.Count = len(f.Rules)
	return f
}

// policyFromForm reads the posted form into a policy for the service. Rule
// IDs are kept only when they belong to the policy being edited (old); a
// rule set left blank (no name, no groups, no ports) or marked remove is
// dropped. It returns the form to show again when the change is refused.
func policyFromForm(rq *req, old *model.Policy) (*model.Policy, policyForm, error) {
	a := rq.acct
	form := policyForm{}
	if err := parseForm(rq); err != nil {
		return nil, newPolicyForm(a, old), err
	}
	pf := rq.r.PostForm
	p := &model.Policy{Name: pf.Get("name"), Description: pf.Get("description"), Enabled: pf.Get("enabled") == "on"}
	if old != nil {
		p.ID, form.ID = old.ID, old.ID
	}
	form.Name, form.Description, form.Enabled = display(p.Name), display(p.Description), p.Enabled
	n, err := strconv.Atoi(pf.Get("rules"))
	if err != nil || n < 0 || n > maxFormRules {
		return nil, newPolicyForm(a, old), badInput("unreadable form: rules %q", display(pf.Get("rules")))
	}
	var problem error
	for i := range n {
		k := strconv.Itoa(i)
		r := model.PolicyRule{ID: pf.Get("rule_id_" + k), Name: strings.TrimSpace(pf.Get("rule_name_" + k)),
			Sources: pf["src_"+k], Destinations: pf["dst_"+k], Protocol: model.Protocol(pf.Get("proto_" + k)),
			Bidirectional: pf.Get("bidir_"+k) == "on", Action: model.ActionAccept}
		if pf.Get("action_"+k) == string(model.ActionDrop) {
			r.Action = model.ActionDrop
		}
		if old == nil || !slices.ContainsFunc(old.Rules, func(o model.PolicyRule) bool { return o.ID == r.ID }) {
			r.ID = "" // new rule: the service names it
		}
		ports := strings.TrimSpace(pf.Get("ports_" + k))
		rf := newRuleForm(a, len(form.Rules), r, false)
		rf.Ports = display(ports)
		if pf.Get("remove_"+k) == "on" || (r.Name == "" && len(r.Sources) == 0 && len(r.Destinations) == 0 && ports == "") {
			continue
		}
		if r.Ports, err = parsePorts(ports); err != nil && problem == nil {
			problem = badInput("rule %d: %v", len(p.Rules)+1, err)
		}
		p.Rules = append(p.Rules, r)
		form.Rules = append(form.Rules, rf)
	}
	form.Rules = append(form.Rules, newRuleForm(a, len(form.Rules), model.PolicyRule{Bidirectional: true}, true))
	form.Count = len(form.Rules)
	if problem != nil {
		return nil, form, problem
	}
	return p, form, nil
}

// parsePorts reads "22, 80, 8000-8080" (empty: all ports).
func parsePorts(s string) ([]model.PortRange, error) {
	var out []model.PortRange
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		start, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		end, err2 := start, error(nil)
		if isRange {
			end, err2 = strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
		}
		if err1 != nil || err2 != nil {
			return nil, badInput("ports %q: want numbers from 1 to 65535 or ranges such as 8000-8080, separated by commas", display(part))
		}
		out = append(out, model.PortRange{Start: uint16(start), End: uint16(end)})
	}
	return out, nil
}

type policyEditData struct {
	Form    policyForm
	Editing bool
}

// newPolicy (GET /ui/policies/new) shows an empty form.
func (h *Handler) newPolicy(rq *req) error {
	h.render(rq, http.StatusOK, "policyedit", "New policy", policyEditData{Form: newPolicyForm(rq.acct, nil)})
	return nil
}

// editPolicy (GET /ui/policies/{id}) shows a policy's form.
func (h *Handler) editPolicy(rq *req) error {
	p := rq.acct.Policies[rq.r.PathValue("id")]
	if p == nil {
		return notFound("policy %q not found", rq.r.PathValue("id"))
	}
	h.render(rq, http.StatusOK, "policyedit", "Edit policy", policyEditData{Form: newPolicyForm(rq.acct, p), Editing: true})
	return nil
}

func (h *Handler) createPolicy(rq *req) error { return h.putPolicy(rq, nil) }

func (h *Handler) updatePolicy(rq *req) error {
	old := rq.acct.Policies[rq.r.PathValue("id")]
	if old == nil {
		return notFound("policy %q not found", rq.r.PathValue("id"))
	}
	return h.putPolicy(rq, old)
}

// putPolicy creates (old nil) or replaces a policy from the posted form;
// a refused form is shown again as typed, with the reason.
func (h *Handler) putPolicy(rq *req, old *model.Policy) error {
	p, form, err := policyFromForm(rq, old)
	if err == nil {
		var obj model.Object
		if obj, err = h.svc.Put(rq.ctx(), rq.acct.ID, p); err == nil {
			verb := "Created"
			if old != nil {
				verb = "Saved"
			}
			return h.done(rq, "/ui/policies", verb+" policy "+display(obj.(*model.Policy).Name)+".")
		}
	}
	status, fl := errFlash(err)
	title := "New policy"
	if old != nil {
		title = "Edit policy"
	}
	h.render(rq, status, "policyedit", title, policyEditData{Form: form, Editing: old != nil}, fl)
	return nil
}

// deletePolicy (POST /ui/policies/{id}/delete) deletes after a
// confirmation page.
func (h *Handler) deletePolicy(rq *req) error {
	fail := h.failOn(rq, "policies", "Policies", func() any { return h.policiesData(rq) })
	p := rq.acct.Policies[rq.r.PathValue("id")]
	if p == nil {
		return fail(notFound("policy %q not found", rq.r.PathValue("id")))
	}
	what := "policy " + display(p.Name)
	return h.change(rq, oneChange{back: "/ui/policies", fail: fail, title: "Delete " + what,
		confirm: &confirmDeleteData{Title: "Delete " + what + "?", Items: []string{what, strconv.Itoa(len(p.Rules)) + " rule(s)"},
			Action: "/ui/policies/" + p.ID + "/delete", Cancel: "/ui/policies",
			Note: "Connections only this policy allowed are refused by the agents' firewalls at once."},
		apply: func() (string, error) {
			return "Deleted " + what + ".", h.svc.Delete(rq.ctx(), rq.acct.ID, model.KindPolicy, p.ID)
		}})
}
