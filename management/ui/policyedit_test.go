package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"petrel/management/model"
)

// policyByName returns the account's policy named name, or nil.
func (e *env) policyByName(name string) *model.Policy {
	for _, p := range e.snapshot().Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// TestPolicyForms: create a policy with a rule from the form, edit it
// (rename, change a rule's ports, add a rule, remove one), refuse bad
// input keeping what was typed and changing nothing, and delete it after
// a confirmation page.
func TestPolicyForms(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.signIn(e.admin)
	all := e.allGroup()
	g, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	web := g.ObjectID()

	b.get("/ui/policies/new").want(t, http.StatusOK, `id="policy-form"`, `name="rules" value="1"`, "Add a rule")
	r := b.post("/ui/policies", url.Values{"name": {"ssh"}, "enabled": {"on"}, "rules": {"1"},
		"rule_id_0": {"forged-id"}, "rule_name_0": {"admins"}, "src_0": {all}, "dst_0": {web}, "proto_0": {"tcp"},
		"ports_0": {"22, 8000-8080"}, "action_0": {"accept"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/ui/policies" {
		t.Fatalf("create: %d %q\n%s", r.status, r.header.Get("Location"), r.body)
	}
	p := e.policyByName("ssh")
	if p == nil || !p.Enabled || len(p.Rules) != 1 {
		t.Fatalf("created policy %+v", p)
	}
	rule := p.Rules[0]
	if rule.ID == "forged-id" || rule.Name != "admins" || rule.Protocol != model.ProtoTCP || rule.Bidirectional ||
		len(rule.Ports) != 2 || rule.Ports[1] != (model.PortRange{Start: 8000, End: 8080}) ||
		rule.Sources[0] != all || rule.Destinations[0] != web {
		t.Fatalf("created rule %+v", rule)
	}
	b.get("/ui/policies").want(t, http.StatusOK, "Created policy ssh.", `href="/ui/policies/`+p.ID+`"`)

	// The edit form holds the rule and a blank one.
	b.get("/ui/policies/"+p.ID).want(t, http.StatusOK, `value="ssh"`, `name="rule_id_0" value="`+rule.ID+`"`,
		`value="22, 8000-8080"`, `name="rules" value="2"`)

	// Edit: rename, new ports on the kept rule (same ID), add a udp rule.
	r = b.post("/ui/policies/"+p.ID, url.Values{"name": {"remote"}, "enabled": {"on"}, "rules": {"2"},
		"rule_id_0": {rule.ID}, "rule_name_0": {"admins"}, "src_0": {all}, "dst_0": {web}, "proto_0": {"tcp"},
		"ports_0": {"2222"}, "action_0": {"accept"},
		"rule_name_1": {"dns"}, "src_1": {web}, "dst_1": {all}, "proto_1": {"udp"}, "ports_1": {"53"},
		"bidir_1": {"on"}, "action_1": {"drop"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", r.status, r.body)
	}
	p = e.snapshot().Policies[p.ID]
	if p.Name != "remote" || len(p.Rules) != 2 || p.Rules[0].ID != rule.ID || p.Rules[0].Ports[0].Start != 2222 ||
		p.Rules[1].Protocol != model.ProtoUDP || p.Rules[1].Action != model.ActionDrop || !p.Rules[1].Bidirectional {
		t.Fatalf("edited policy %+v", p)
	}
	kept := p.Rules[1].ID

	// Remove the first rule; a forged rule ID is not taken over.
	r = b.post("/ui/policies/"+p.ID, url.Values{"name": {"remote"}, "rules": {"2"},
		"rule_id_0": {rule.ID}, "rule_name_0": {"admins"}, "src_0": {all}, "dst_0": {web}, "remove_0": {"on"},
		"rule_id_1": {kept}, "rule_name_1": {"dns"}, "src_1": {web}, "dst_1": {all}, "proto_1": {"udp"}, "ports_1": {"53"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("remove a rule: %d\n%s", r.status, r.body)
	}
	p = e.snapshot().Policies[p.ID]
	if len(p.Rules) != 1 || p.Rules[0].ID != kept || p.Enabled {
		t.Fatalf("after removing a rule and disabling: %+v", p)
	}

	// Bad input: refused with the reason, the form as typed, nothing changed.
	before := e.snapshot().Version
	for _, tc := range []struct {
		form url.Values
		msg  string
	}{
		{url.Values{"name": {"x"}, "rules": {"1"}, "src_0": {all}, "dst_0": {web}, "proto_0": {"tcp"}, "ports_0": {"22, http"}},
			"want numbers from 1 to 65535"},
		{url.Values{"name": {"x"}, "rules": {"1"}, "src_0": {all}, "dst_0": {web}, "proto_0": {"icmp"}, "ports_0": {"22"}},
			"ports need protocol tcp or udp"},
		{url.Values{"name": {"x"}, "rules": {"1"}, "src_0": {"no-such-group"}, "dst_0": {web}}, "no-such-group"},
		{url.Values{"name": {"x"}, "rules": {"1"}}, "has no rules"},
		{url.Values{"name": {""}, "rules": {"1"}, "src_0": {all}, "dst_0": {web}}, "name must not be empty"},
		{url.Values{"name": {"x"}, "rules": {"100000"}}, "unreadable form"},
	} {
		r := b.post("/ui/policies/"+p.ID, tc.form)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, tc.msg) {
			t.Fatalf("%v: %d, want 400 with %q\n%s", tc.form, r.status, tc.msg, r.body)
		}
	}
	r = b.post("/ui/policies", url.Values{"name": {"typed"}, "rules": {"1"}, "rule_name_0": {"kept-text"},
		"src_0": {all}, "dst_0": {web}, "proto_0": {"tcp"}, "ports_0": {"99999"}})
	r.want(t, http.StatusBadRequest, `value="typed"`, `value="kept-text"`, `value="99999"`)
	if e.snapshot().Version != before {
		t.Fatal("a refused form changed the account")
	}

	// Delete: a confirmation page first, then gone.
	b.post("/ui/policies/"+p.ID+"/delete", nil).want(t, http.StatusOK, "Delete policy remote?", `name="confirm" value="yes"`)
	if e.snapshot().Policies[p.ID] == nil {
		t.Fatal("deleted before the confirmation")
	}
	if r := b.post("/ui/policies/"+p.ID+"/delete", url.Values{"confirm": {"yes"}}); r.status != http.StatusSeeOther {
		t.Fatalf("confirmed delete: %d\n%s", r.status, r.body)
	}
	if e.snapshot().Policies[p.ID] != nil {
		t.Fatal("policy still there after the confirmed delete")
	}
	b.get("/ui/policies/"+p.ID).want(t, http.StatusNotFound)
}

// TestPolicyFormsGuarded: a user (not admin) gets 403 on every form and
// action, a cross-origin post is refused, and a policy name made of markup
// is shown as text on the list and the form.
func TestPolicyFormsGuarded(t *testing.T) {
	e := newEnv(t)
	all := e.allGroup()
	probe := `<img src=x onerror=alert(1)>`
	obj, err := e.svc.Put(e.ctx(), e.acct, &model.Policy{Name: probe, Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{all}, Destinations: []string{all}, Protocol: model.ProtoAll, Action: model.ActionAccept}}})
	if err != nil {
		t.Fatal(err)
	}
	id := obj.ObjectID()

	user := e.browser()
	user.signIn(e.user("uma", model.RoleUser).pat)
	for _, path := range []string{"/ui/policies/new", "/ui/policies/" + id} {
		user.get(path).want(t, http.StatusForbidden)
	}
	for _, path := range []string{"/ui/policies", "/ui/policies/" + id, "/ui/policies/" + id + "/delete"} {
		user.post(path, url.Values{"name": {"x"}, "rules": {"0"}, "confirm": {"yes"}}).want(t, http.StatusForbidden)
	}

	admin := e.browser()
	admin.signIn(e.admin)
	r := admin.do("POST", "/ui/policies/"+id+"/delete", url.Values{"confirm": {"yes"}}, "Sec-Fetch-Site", "cross-site")
	r.want(t, http.StatusForbidden, "cross-origin request refused")
	if e.snapshot().Policies[id] == nil {
		t.Fatal("a cross-origin delete went through")
	}
	for _, path := range []string{"/ui/policies", "/ui/policies/" + id} {
		r := admin.get(path)
		r.want(t, http.StatusOK, "&lt;img src=x onerror=alert(1)&gt;")
		if strings.Contains(r.body, probe) {
			t.Fatalf("%s: the policy name is markup", path)
		}
	}
}
