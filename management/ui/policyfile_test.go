package ui_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"petrel/management/model"
)

// pfFile has a create, an update (stray's members) and, with prune, a
// delete (the Default policy) against pfEnv's state.
const pfFile = `groups:
  - name: laptops
    peers: [laptop]
  - name: stray
    peers: [gw-1]
policies:
  - name: laptops-to-all
    rules:
      - sources: [laptops]
        destinations: [All]
        protocol: tcp
        ports: [443]
`

// pfEnv is an account with two peers, a group "stray" without members
// and a policy "Default"; b is the owner's browser, signed in.
func pfEnv(t *testing.T) (*env, *browser) {
	t.Helper()
	e := newEnv(t)
	key := e.setupKey()
	e.addPeer(key, "gw-1")
	e.addPeer(key, "laptop")
	if _, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "stray"}); err != nil {
		t.Fatal(err)
	}
	all := e.allGroup()
	if _, err := e.svc.Put(e.ctx(), e.acct, &model.Policy{Name: "Default", Enabled: true, Rules: []model.PolicyRule{{
		Sources: []string{all}, Destinations: []string{all}, Protocol: model.ProtoAll, Action: model.ActionAccept}}}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(e.admin)
	return e, b
}

// pfState is everything a policy file may change, in a comparable form.
func (e *env) pfState() string {
	e.t.Helper()
	a := e.snapshot()
	var out []string
	for _, g := range a.Groups {
		var peers []string
		for _, id := range g.PeerIDs {
			peers = append(peers, a.Peers[id].Name)
		}
		slices.Sort(peers)
		out = append(out, fmt.Sprintf("group %s %v", g.Name, peers))
	}
	for _, p := range a.Policies {
		out = append(out, fmt.Sprintf("policy %s %d rules enabled=%v", p.Name, len(p.Rules), p.Enabled))
	}
	for _, r := range a.Routes {
		out = append(out, fmt.Sprintf("route %s %s", r.Network, r.ID))
	}
	for _, ns := range a.NameserverGroups {
		out = append(out, "nameservers "+ns.Name)
	}
	for _, z := range a.DNSZones {
		out = append(out, "zone "+z.Domain)
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// pfPost posts the policy file form to /ui/policies/file/ACTION; hdr are
// extra request headers.
func (b *browser) pfPost(action, file string, prune bool, digest string, hdr ...string) resp {
	b.e.t.Helper()
	form := url.Values{"file": {file}, "digest": {digest}}
	if prune {
		form.Set("prune", "1")
	}
	return b.do("POST", "/ui/policies/file/"+action, form, hdr...)
}

var digestField = regexp.MustCompile(`name="digest" value="([0-9a-f]*)"`)

// digest is the digest the page's form carries ("" when none).
func (r resp) digest(t *testing.T) string {
	t.Helper()
	m := digestField.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no digest field:\n%s", r.body)
	}
	return m[1]
}

// cells returns the text of each row of the table with id, cells joined by
// " | ", trimmed.
func cells(t *testing.T, body, id string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var table *html.Node
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "table" && slices.ContainsFunc(n.Attr, func(a html.Attribute) bool {
			return a.Key == "id" && a.Val == id
		}) {
			table = n
		}
		for c := n.FirstChild; c != nil && table == nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	if table == nil {
		return nil
	}
	var rows []string
	var text func(n *html.Node, b *strings.Builder)
	text = func(n *html.Node, b *strings.Builder) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			text(c, b)
		}
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" && n.Parent.Data == "tbody" {
			var cs []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && c.Data == "td" {
					var b strings.Builder
					text(c, &b)
					cs = append(cs, strings.Join(strings.Fields(b.String()), " "))
				}
			}
			rows = append(rows, strings.Join(strings.Fields(strings.Join(cs, " | ")), " "))
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(table)
	return rows
}

// TestPolicyFilePreview: the preview renders the plan as + ~ - rows with
// the fields' old and new values, and changes nothing; the upload works
// as the text area does.
func TestPolicyFilePreview(t *testing.T) {
	e, b := pfEnv(t)
	b.get("/ui/policies").want(t, http.StatusOK, `href="/ui/policies/file"`)
	b.get("/ui/policies/file").want(t, http.StatusOK, `id="policyfile-text"`, `id="policyfile-prune"`,
		`formaction="/ui/policies/file/preview"`, `formaction="/ui/policies/file/apply"`)
	before := e.pfState()
	r := b.pfPost("preview", pfFile, true, "")
	r.want(t, http.StatusOK, "2 to create, 1 to update, 1 to delete")
	want := []string{
		"+ | group | laptops | name | | laptops",
		"| | | peers | | laptop",
		"~ | group | stray | peers | [] | gw-1",
		"+ | policy | laptops-to-all | name | | laptops-to-all",
		"| | | enabled | | true",
		"| | | rules[0].sources | | laptops",
		"| | | rules[0].destinations | | All",
		"| | | rules[0].protocol | | tcp",
		"| | | rules[0].ports | | 443",
		"| | | rules[0].bidirectional | | false",
		"| | | rules[0].action | | accept",
		"- | policy | Default | deleted",
	}
	if got := cells(t, r.body, "policyfile-plan"); !slices.Equal(got, want) {
		t.Fatalf("plan rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.digest(t) == "" {
		t.Fatal("a preview with a plan carries no digest")
	}
	if after := e.pfState(); after != before {
		t.Fatalf("preview changed the state:\n%s\n---\n%s", before, after)
	}

	// Without prune the Default policy is kept and listed as such.
	r = b.pfPost("preview", pfFile, false, "")
	r.want(t, http.StatusOK, "2 to create, 1 to update, 0 to delete", "Not in the file, kept (Prune deletes them): policy Default")

	// The same file uploaded; CRLF line ends are the same file.
	r = b.upload("preview", strings.ReplaceAll(pfFile, "\n", "\r\n"), true)
	r.want(t, http.StatusOK, "2 to create, 1 to update, 1 to delete")
	if r.digest(t) != b.pfPost("preview", pfFile, true, "").digest(t) {
		t.Fatal("the uploaded file's plan differs from the text area's")
	}
	if after := e.pfState(); after != before {
		t.Fatalf("preview changed the state:\n%s\n---\n%s", before, after)
	}
}

// upload posts the file as a multipart upload, the text area empty.
func (b *browser) upload(action, file string, prune bool) resp {
	b.e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("file", "")
	if prune {
		_ = mw.WriteField("prune", "1")
	}
	fw, _ := mw.CreateFormFile("upload", "policy.yaml")
	_, _ = io.WriteString(fw, file)
	_ = mw.Close()
	req, err := http.NewRequest("POST", b.e.srv.URL+"/ui/policies/file/"+action, &body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: string(raw)}
}

// TestPolicyFileApply: apply makes the previewed plan, step by step, as
// the signed-in user (the audit log names them); a second preview shows
// no changes. An admin who is not the owner may apply.
func TestPolicyFileApply(t *testing.T) {
	e, _ := pfEnv(t)
	bob := e.user("bob", model.RoleAdmin)
	b := e.browser()
	b.signIn(bob.pat)
	digest := b.pfPost("preview", pfFile, true, "").digest(t)
	r := b.pfPost("apply", pfFile, true, digest)
	r.want(t, http.StatusOK, "applied: 2 created, 1 updated, 1 deleted")
	want := []string{"created group laptops | done", "updated group stray (peers) | done",
		"created policy laptops-to-all | done", "deleted policy Default | done"}
	if got := cells(t, r.body, "policyfile-steps"); !slices.Equal(got, want) {
		t.Fatalf("steps:\n%s", strings.Join(got, "\n"))
	}
	if got := e.pfState(); got != "group All [gw-1 laptop]\ngroup laptops [laptop]\ngroup stray [gw-1]\npolicy laptops-to-all 1 rules enabled=true" {
		t.Fatalf("state after apply:\n%s", got)
	}
	evs, err := e.svc.ListEvents(e.ctx(), e.acct, model.EventFilter{Action: "policy.delete"})
	if err != nil || len(evs) != 1 || evs[0].ActorEmail != bob.email {
		t.Fatalf("audit of the delete: %+v %v", evs, err)
	}
	r = b.pfPost("preview", pfFile, true, "")
	r.want(t, http.StatusOK, "No changes: the live state already is what the file says.")
	// Download current: the live state as a file, which plans no changes
	// even with prune.
	r = b.get("/ui/policies/file/current")
	r.want(t, http.StatusOK, "  - name: laptops\n    peers:\n      - laptop\n", "  - name: laptops-to-all\n")
	if ct := r.header.Get("Content-Type"); ct != "application/yaml; charset=utf-8" || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download headers: %v", r.header)
	}
	b.pfPost("preview", r.body, true, "").want(t, http.StatusOK, "No changes: the live state already is what the file says.")
}

// TestPolicyFileApplyStale: apply refuses, changing nothing, when the plan
// differs from the previewed one: the live state changed, the file was
// edited, prune was ticked, or there was no preview. The refusal shows the
// new plan, which can then be applied.
func TestPolicyFileApplyStale(t *testing.T) {
	e, b := pfEnv(t)
	digest := b.pfPost("preview", pfFile, true, "").digest(t)

	// Someone else adds a group; with prune the plan now deletes it too.
	if _, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "newcomer"}); err != nil {
		t.Fatal(err)
	}
	before := e.pfState()
	r := b.pfPost("apply", pfFile, true, digest)
	r.want(t, http.StatusConflict, "nothing was changed: the plan differs from the one previewed", "Plan (changed since the preview)")
	if got := cells(t, r.body, "policyfile-plan"); !slices.Contains(got, "- | group | newcomer | deleted") {
		t.Fatalf("the refusal does not show the new plan:\n%s", strings.Join(got, "\n"))
	}
	if after := e.pfState(); after != before {
		t.Fatalf("a refused apply changed the state:\n%s\n---\n%s", before, after)
	}
	newDigest := r.digest(t)

	// A live change that keeps the plan's text but not its target: the
	// group "newcomer" deleted and created again has another ID.
	for _, g := range e.snapshot().Groups {
		if g.Name == "newcomer" {
			if err := e.svc.Delete(e.ctx(), e.acct, model.KindGroup, g.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := e.svc.Put(e.ctx(), e.acct, &model.Group{Name: "newcomer"}); err != nil {
		t.Fatal(err)
	}
	before = e.pfState()
	b.pfPost("apply", pfFile, true, newDigest).want(t, http.StatusConflict, "the plan differs")
	if after := e.pfState(); after != before {
		t.Fatal("a refused apply changed the state")
	}

	digest = b.pfPost("preview", pfFile, true, "").digest(t)
	for _, tc := range []struct {
		name, file string
		prune      bool
		digest     string
		msg        string
	}{
		{"file edited", strings.Replace(pfFile, "443", "8443", 1), true, digest, "the plan differs"},
		{"prune unticked", pfFile, false, digest, "the plan differs"},
		{"comment added", pfFile + "# same plan\n", true, digest, "the plan differs"},
		{"no preview", pfFile, true, "", "preview the file first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.pfPost("apply", tc.file, tc.prune, tc.digest).want(t, http.StatusConflict, tc.msg)
			if after := e.pfState(); after != before {
				t.Fatal("a refused apply changed the state")
			}
		})
	}
	// The plan as shown now applies.
	b.pfPost("apply", pfFile, true, digest).want(t, http.StatusOK, "applied: 2 created, 1 updated, 2 deleted")
}

// TestPolicyFileProblems: a file that does not parse or names unknown
// groups or peers shows every problem and changes nothing, on preview and
// on apply.
func TestPolicyFileProblems(t *testing.T) {
	e, b := pfEnv(t)
	before := e.pfState()
	digest := b.pfPost("preview", pfFile, false, "").digest(t)
	for _, tc := range []struct {
		name, file string
		problems   []string
	}{
		{"unknown key", "groups:\n  - name: a\n    colour: red\n", []string{`line 3: unknown key &#34;colour&#34;`}},
		{"syntax", "groups: [\n", []string{"did not find expected node content"}},
		{"empty", "  \n", []string{"the file is empty"}},
		{"unknown references", strings.NewReplacer("sources: [laptops]", "sources: [ghost]", "peers: [gw-1]", "peers: [gw-9]").Replace(pfFile),
			[]string{`groups[1] &#34;stray&#34;: peers[0]: unknown peer &#34;gw-9&#34;`,
				`policies[0] &#34;laptops-to-all&#34;: rules[0]: sources[0]: unknown group &#34;ghost&#34; (neither in the file nor on the server)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, action := range []string{"preview", "apply"} {
				r := b.pfPost(action, tc.file, false, digest)
				r.want(t, http.StatusBadRequest, append([]string{"Problems in the file", "Nothing was changed."}, tc.problems...)...)
				if strings.Contains(r.body, `id="policyfile-plan"`) || r.digest(t) != "" {
					t.Fatalf("%s of a bad file shows a plan or carries a digest", action)
				}
				if after := e.pfState(); after != before {
					t.Fatalf("%s of a bad file changed the state", action)
				}
			}
		})
	}
}

// TestPolicyFileStopsAtFailure: a step the server refuses stops apply; the
// page shows what was applied, the failure and what was not applied.
func TestPolicyFileStopsAtFailure(t *testing.T) {
	e, b := pfEnv(t)
	file := "groups:\n  - name: office\nroutes:\n  - network: 100.64.5.0/24\n    peer: gw-1\n    groups: [office]\n" +
		"  - network: 10.9.0.0/16\n    peer: gw-1\n    groups: [office]\n"
	digest := b.pfPost("preview", file, false, "").digest(t)
	r := b.pfPost("apply", file, false, digest)
	r.want(t, http.StatusBadRequest, "apply stopped at the failed step below")
	got := cells(t, r.body, "policyfile-steps")
	if len(got) != 3 || got[0] != "created group office | done" ||
		!strings.HasPrefix(got[1], "create route 100.64.5.0/24 via gw-1 | failed route network 100.64.5.0/24 overlaps") ||
		got[2] != "create route 10.9.0.0/16 via gw-1 | not applied" {
		t.Fatalf("steps:\n%s", strings.Join(got, "\n"))
	}
	if !strings.Contains(e.pfState(), "group office []") || strings.Contains(e.pfState(), "route ") {
		t.Fatalf("state after the failed step:\n%s", e.pfState())
	}
}

// TestPolicyFileAdminOnly: a user (role user) gets 403 on the page, the
// preview and the apply, and nothing changes.
func TestPolicyFileAdminOnly(t *testing.T) {
	e, admin := pfEnv(t)
	digest := admin.pfPost("preview", pfFile, true, "").digest(t)
	alice := e.user("alice", model.RoleUser)
	b := e.browser()
	b.signIn(alice.pat)
	before := e.pfState()
	b.get("/ui/policies/file").want(t, http.StatusForbidden, "this page needs the admin role")
	b.get("/ui/policies/file/current").want(t, http.StatusForbidden, "this page needs the admin role")
	b.pfPost("preview", pfFile, true, "").want(t, http.StatusForbidden, "this page needs the admin role")
	r := b.pfPost("apply", pfFile, true, digest)
	r.want(t, http.StatusForbidden, "this page needs the admin role")
	if strings.Contains(r.body, "policyfile-plan") {
		t.Fatal("a user saw the plan")
	}
	if after := e.pfState(); after != before {
		t.Fatal("a user's apply changed the state")
	}
	// Signed out: to the sign-in page.
	if r := e.browser().pfPost("apply", pfFile, true, digest); r.status != http.StatusSeeOther ||
		!strings.HasPrefix(r.header.Get("Location"), "/ui/login") {
		t.Fatalf("signed out: %d %s", r.status, r.header.Get("Location"))
	}
}

// TestPolicyFileCrossOrigin: preview and apply from another origin are
// refused, and nothing changes, even with a valid digest.
func TestPolicyFileCrossOrigin(t *testing.T) {
	e, b := pfEnv(t)
	digest := b.pfPost("preview", pfFile, true, "").digest(t)
	before := e.pfState()
	for _, hdr := range [][]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "http://evil.example"}} {
		for _, action := range []string{"preview", "apply"} {
			r := b.pfPost(action, pfFile, true, digest, hdr...)
			r.want(t, http.StatusForbidden, "cross-origin request refused")
			if strings.Contains(r.body, "policyfile-plan") {
				t.Fatalf("%s %v: the plan was shown cross-origin", action, hdr)
			}
		}
	}
	if after := e.pfState(); after != before {
		t.Fatal("a cross-origin apply changed the state")
	}
	// The same request from the dashboard's own origin goes through.
	b.pfPost("apply", pfFile, true, digest, "Sec-Fetch-Site", "same-origin", "Origin", e.srv.URL).
		want(t, http.StatusOK, "applied: 2 created, 1 updated, 1 deleted")
}

// TestPolicyFileEscapes: names from the file render as text in the plan,
// the problems, the text area and the applied steps.
func TestPolicyFileEscapes(t *testing.T) {
	e, b := pfEnv(t)
	const probe = `<img src=x onerror=alert(1)>`
	file := "groups:\n  - name: '" + probe + "'\npolicies:\n  - name: p\n    rules:\n      - sources: ['" + probe + "']\n        destinations: ['</textarea><script>alert(2)</script>']\n"
	check := func(r resp) {
		t.Helper()
		for _, raw := range []string{"<img", "<script>alert", "</textarea><script>"} {
			if strings.Contains(r.body, raw) {
				t.Fatalf("%q rendered as markup:\n%s", raw, r.body)
			}
		}
	}
	r := b.pfPost("preview", file, false, "")
	r.want(t, http.StatusBadRequest, "&lt;img src=x onerror=alert(1)&gt;", "unknown group &#34;&lt;/textarea&gt;&lt;script&gt;alert(2)&lt;/script&gt;&#34;")
	check(r)
	file = "groups:\n  - name: '" + probe + "'\n"
	r = b.pfPost("preview", file, false, "")
	r.want(t, http.StatusOK, "&lt;img src=x onerror=alert(1)&gt;")
	check(r)
	if got := cells(t, r.body, "policyfile-plan"); len(got) == 0 || got[0] != "+ | group | "+probe+" | name | | "+probe {
		t.Fatalf("plan rows: %q", got)
	}
	r = b.pfPost("apply", file, false, r.digest(t))
	r.want(t, http.StatusOK, "created group &lt;img src=x onerror=alert(1)&gt;")
	check(r)
	if !strings.Contains(e.pfState(), "group "+probe+" []") {
		t.Fatalf("the group was not created:\n%s", e.pfState())
	}
}
