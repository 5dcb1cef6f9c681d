package restapi

import (
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"petrel/management/model"
)

// TestEventsAudit: mutations through the API are listed newest first with
// the right actor (the admin token, or the user of a PAT); the filters
// select; paging with next_before walks the same events as one page.
func TestEventsAudit(t *testing.T) {
	e := newEnv(t)
	alice := e.signIn("alice", model.RoleUser)
	peer := e.userPeer(alice, "alice-laptop")
	pat := e.pat(alice, "laptop", nil)
	var g groupView
	e.must("POST", "/api/groups", map[string]any{"name": "web"}, 201, &g)
	e.as(pat, "PATCH", "/api/peers/"+peer.ID, map[string]any{"name": "renamed"}, 200, nil)

	var page eventPage
	e.must("GET", "/api/events", nil, 200, &page)
	if len(page.Events) < 4 || page.NextBefore != nil {
		t.Fatalf("events: %+v", page)
	}
	for i := 1; i < len(page.Events); i++ {
		if page.Events[i-1].Seq <= page.Events[i].Seq {
			t.Fatalf("not newest first: %+v", page.Events)
		}
	}
	newest := page.Events[0]
	if newest.Action != "peer.update" || newest.Actor != "user:"+alice.id || newest.ActorEmail != alice.email || newest.TargetID != peer.ID {
		t.Fatalf("peer rename event: %+v", newest)
	}
	adminToken := e.snapshot().AdminTokens
	var adminID string
	for id := range adminToken {
		adminID = id
	}
	var groupEv *eventView
	for i, ev := range page.Events {
		if ev.Action == "group.create" {
			groupEv = &page.Events[i]
		}
	}
	if groupEv == nil || groupEv.Actor != "admin-token:"+adminID || groupEv.TargetKind != "group" || groupEv.TargetID != g.ID || groupEv.At == nil {
		t.Fatalf("group create event: %+v", groupEv)
	}

	filter := func(q url.Values) []eventView {
		t.Helper()
		var p eventPage
		e.must("GET", "/api/events?"+q.Encode(), nil, 200, &p)
		return p.Events
	}
	for _, c := range []struct {
		q    url.Values
		want func(eventView) bool
	}{
		{url.Values{"action": {"group.create"}}, func(v eventView) bool { return v.Action == "group.create" }},
		{url.Values{"action": {"peer."}}, func(v eventView) bool { return len(v.Action) > 5 && v.Action[:5] == "peer." }},
		{url.Values{"actor": {"user:" + alice.id}}, func(v eventView) bool { return v.Actor == "user:"+alice.id }},
		{url.Values{"target_kind": {"group"}, "target_id": {g.ID}}, func(v eventView) bool { return v.TargetID == g.ID }},
		{url.Values{"since": {newest.At.Add(-time.Nanosecond).Format(time.RFC3339Nano)}}, func(v eventView) bool { return !v.At.Before(newest.At.Truncate(time.Second)) }},
	} {
		got := filter(c.q)
		if len(got) == 0 {
			t.Errorf("%v: no events", c.q)
		}
		for _, v := range got {
			if !c.want(v) {
				t.Errorf("%v: %+v does not match", c.q, v)
			}
		}
	}
	if got := filter(url.Values{"until": {"2001-01-01T00:00:00Z"}}); len(got) != 0 {
		t.Errorf("until 2001: %+v", got)
	}

	// Paging one by one gives the same events.
	var paged []eventView
	q := url.Values{"limit": {"1"}}
	for range 100 {
		var p eventPage
		e.must("GET", "/api/events?"+q.Encode(), nil, 200, &p)
		paged = append(paged, p.Events...)
		if p.NextBefore == nil {
			break
		}
		q.Set("before", strconv.FormatInt(*p.NextBefore, 10))
	}
	if !reflect.DeepEqual(paged, page.Events) {
		t.Fatalf("paged:\n%+v\nwhole:\n%+v", paged, page.Events)
	}

	// Users may not read the log.
	e.failsAs(pat, "GET", "/api/events", nil, 403, codePermission, "needs the admin role")
}

// TestEventsBadQuery: every bad parameter is a 400 naming it.
func TestEventsBadQuery(t *testing.T) {
	e := newEnv(t)
	for q, msg := range map[string]string{
		"limit=0":            `limit "0"`,
		"limit=1001":         `limit "1001"`,
		"limit=x":            `limit "x"`,
		"before=-1":          `before "-1"`,
		"before=abc":         `before "abc"`,
		"since=yesterday":    `since "yesterday"`,
		"until=2026-01-01":   `until "2026-01-01"`,
		"target_kind=planet": `target_kind "planet"`,
		"colour=red":         `unknown query parameter "colour"`,
		"actor=a&actor=b":    `"actor" given 2 times`,
		"since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z": "is before since",
	} {
		e.fails("GET", "/api/events?"+q, nil, 400, codeInvalid, msg)
	}
}
