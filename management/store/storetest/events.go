package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
)

// appendEvents appends events (given newest first, as ListEvents returns
// them) oldest first, in one Update; their Seq fields are ignored.
func appendEvents(t testing.TB, s store.Store, accountID string, events []model.Event) {
	t.Helper()
	err := s.Update(ctxFor(t), func(tx store.Tx) error {
		for i := len(events) - 1; i >= 0; i-- {
			if err := tx.AppendEvent(accountID, events[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("append events: %v", err)
	}
}

func listEvents(t testing.TB, s store.Store, accountID string, f model.EventFilter) []model.Event {
	t.Helper()
	got, err := s.ListEvents(ctxFor(t), accountID, f)
	if err != nil {
		t.Fatalf("list events of %s with %+v: %v", accountID, f, err)
	}
	return got
}

// checkEvents compares the account's whole log (Seq included) with want.
func checkEvents(t testing.TB, when string, s store.Store, accountID string, want []model.Event) {
	t.Helper()
	got := listEvents(t, s, accountID, model.EventFilter{})
	if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
		t.Fatalf("%s: events of %s:\n got  %+v\n want %+v", when, accountID, got, want)
	}
}

// checkAppended checks that the account's log is added (with a store
// assigned Seq above every earlier one) followed by before, and returns it.
func checkAppended(t testing.TB, s store.Store, accountID string, added model.Event, before []model.Event) []model.Event {
	t.Helper()
	got := listEvents(t, s, accountID, model.EventFilter{})
	if len(got) == 0 || (len(before) > 0 && got[0].Seq <= before[0].Seq) {
		t.Fatalf("appended event: log %+v, want a new newest event above %+v", got, before)
	}
	added.Seq = got[0].Seq
	want := append([]model.Event{added}, before...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events after append:\n got  %+v\n want %+v", got, want)
	}
	return want
}

// eventLog is a mixed log for the filter tests, oldest first: every tenth
// event is by a user, actions cycle through peer.*, group.* and a
// look-alike "peerx.create", targets through three ids.
func eventLog(n int) []model.Event {
	actions := []string{"peer.create", "peer.delete", "group.update", "peerx.create", "peer_.x"}
	var out []model.Event
	for i := range n {
		e := model.Event{At: ts(1700000000+int64(i), int64(i)), Actor: "system", Action: actions[i%len(actions)],
			TargetKind: model.KindPeer, TargetID: fmt.Sprintf("p%d", i%3), Detail: fmt.Sprintf("event %d", i)}
		if i%10 == 0 {
			e.Actor, e.ActorEmail, e.TargetKind = "user:u1", "ana@corp.example", model.KindGroup
		}
		out = append(out, e)
	}
	return out
}

// appendLog writes events oldest first, one Update each (as the service
// does), and returns them newest first with the Seq the store assigned.
func appendLog(t testing.TB, s store.Store, accountID string, events []model.Event) []model.Event {
	t.Helper()
	for _, e := range events {
		if err := s.Update(ctxFor(t), func(tx store.Tx) error { return tx.AppendEvent(accountID, e) }); err != nil {
			t.Fatalf("append event: %v", err)
		}
	}
	got := listEvents(t, s, accountID, model.EventFilter{})
	if len(got) != len(events) {
		t.Fatalf("appended %d events, listed %d", len(events), len(got))
	}
	for i := range got {
		e := events[len(events)-1-i]
		e.Seq = got[i].Seq
		if !reflect.DeepEqual(got[i], e) {
			t.Fatalf("event %d round trip:\n got  %+v\n want %+v", i, got[i], e)
		}
		if i > 0 && got[i].Seq >= got[i-1].Seq {
			t.Fatalf("seqs not increasing with append order: %d after %d", got[i-1].Seq, got[i].Seq)
		}
	}
	return got
}

// testEventsRollback: an event appended in a failed Update is not kept,
// and an event for a missing account is refused.
func testEventsRollback(t *testing.T, s store.Store) {
	save(t, s, fullAccount("acc", 10))
	boom := errors.New("boom")
	err := s.Update(ctxFor(t), func(tx store.Tx) error {
		if err := tx.Put("acc", &model.Group{ID: "g9", Name: "new"}); err != nil {
			return err
		}
		if err := tx.AppendEvent("acc", model.Event{At: ts(1700000000, 1), Actor: "system", Action: "group.create",
			TargetKind: model.KindGroup, TargetID: "g9"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update: %v, want the callback's error", err)
	}
	if got := listEvents(t, s, "acc", model.EventFilter{}); len(got) != 0 {
		t.Fatalf("failed update kept its events: %+v", got)
	}
	err = s.Update(ctxFor(t), func(tx store.Tx) error {
		return tx.AppendEvent("nope", model.Event{At: ts(1, 0), Action: "x"})
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("event of a missing account: %v, want store.ErrNotFound", err)
	}
	for name, e := range map[string]model.Event{"no time": {Action: "x"}, "no action": {At: ts(1, 0)},
		"time out of range": {At: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), Action: "x"}} {
		err := s.Update(ctxFor(t), func(tx store.Tx) error { return tx.AppendEvent("acc", e) })
		if err == nil {
			t.Errorf("event with %s appended", name)
		}
	}
	// A kept event is there with the change it records.
	ok := model.Event{At: ts(1700000000, 2), Actor: "system", Action: "group.create", TargetKind: model.KindGroup, TargetID: "g9"}
	if err := s.Update(ctxFor(t), func(tx store.Tx) error {
		if err := tx.Put("acc", &model.Group{ID: "g9", Name: "new"}); err != nil {
			return err
		}
		return tx.AppendEvent("acc", ok)
	}); err != nil {
		t.Fatalf("update: %v", err)
	}
	checkAppended(t, s, "acc", ok, nil)
}

func testListEvents(t *testing.T, s store.Store) {
	save(t, s, fullAccount("acc", 10))
	all := appendLog(t, s, "acc", eventLog(40)) // newest first
	match := func(keep func(e model.Event) bool) []model.Event {
		out := []model.Event{}
		for _, e := range all {
			if keep(e) {
				out = append(out, e)
			}
		}
		if len(out) == 0 {
			t.Fatal("test data: a filter case selects nothing")
		}
		return out
	}
	cases := []struct {
		name string
		f    model.EventFilter
		want []model.Event
	}{
		{"all", model.EventFilter{}, all},
		{"actor", model.EventFilter{Actor: "user:u1"}, match(func(e model.Event) bool { return e.Actor == "user:u1" })},
		{"actor is exact", model.EventFilter{Actor: "user:"}, []model.Event{}},
		{"action exact", model.EventFilter{Action: "peer.create"}, match(func(e model.Event) bool { return e.Action == "peer.create" })},
		{"action exact is not a prefix", model.EventFilter{Action: "peer"}, []model.Event{}},
		{"action prefix", model.EventFilter{Action: "peer."},
			match(func(e model.Event) bool { return strings.HasPrefix(e.Action, "peer.") })},
		{"action prefix has no wildcards", model.EventFilter{Action: "peer_."}, match(func(e model.Event) bool { return e.Action == "peer_.x" })},
		{"action prefix is case-sensitive", model.EventFilter{Action: "PEER."}, []model.Event{}},
		{"target kind", model.EventFilter{TargetKind: model.KindGroup}, match(func(e model.Event) bool { return e.TargetKind == model.KindGroup })},
		{"target id", model.EventFilter{TargetID: "p1"}, match(func(e model.Event) bool { return e.TargetID == "p1" })},
		{"since and until inclusive", model.EventFilter{Since: ts(1700000010, 10), Until: ts(1700000019, 19)},
			match(func(e model.Event) bool { return !e.At.Before(ts(1700000010, 10)) && !e.At.After(ts(1700000019, 19)) })},
		{"since far past, until far future", model.EventFilter{Since: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC),
			Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, all},
		{"combined", model.EventFilter{Action: "peer.", TargetID: "p2", Since: ts(1700000005, 0)},
			match(func(e model.Event) bool {
				return strings.HasPrefix(e.Action, "peer.") && e.TargetID == "p2" && !e.At.Before(ts(1700000005, 0))
			})},
		{"limit", model.EventFilter{Limit: 3}, all[:3]},
		{"limit with filter", model.EventFilter{Action: "group.update", Limit: 2},
			match(func(e model.Event) bool { return e.Action == "group.update" })[:2]},
		{"limit above count", model.EventFilter{Limit: 1000}, all},
	}
	for _, c := range cases {
		got := listEvents(t, s, "acc", c.f)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %d events %s, want %d %s", c.name, len(got), seqs(got), len(c.want), seqs(c.want))
		}
	}
	if _, err := s.ListEvents(ctxFor(t), "acc", model.EventFilter{Limit: -1}); err == nil {
		t.Error("negative limit accepted")
	}
}

// testEventsPaging walks the log backwards with Before and Limit and gets
// every event exactly once, newest first.
func testEventsPaging(t *testing.T, s store.Store) {
	save(t, s, fullAccount("acc", 10))
	all := appendLog(t, s, "acc", eventLog(23))
	var got []model.Event
	f := model.EventFilter{Limit: 5}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatalf("paging does not end: %s", seqs(got))
		}
		page := listEvents(t, s, "acc", f)
		if len(page) == 0 {
			break
		}
		if len(page) > 5 {
			t.Fatalf("page of %d events, limit 5", len(page))
		}
		got = append(got, page...)
		f.Before = page[len(page)-1].Seq
	}
	if !reflect.DeepEqual(got, all) {
		t.Fatalf("paged log %s, want %s", seqs(got), seqs(all))
	}
	// Paging with a filter: only matching events below the cursor.
	peers := listEvents(t, s, "acc", model.EventFilter{Action: "peer.", Before: all[10].Seq, Limit: 2})
	if len(peers) != 2 || peers[0].Seq >= all[10].Seq || !strings.HasPrefix(peers[1].Action, "peer.") {
		t.Fatalf("filtered page below %d: %+v", all[10].Seq, peers)
	}
}

// testEventsPerAccount: an account's events are invisible in another.
func testEventsPerAccount(t *testing.T, s store.Store) {
	save(t, s, fullAccount("acc-a", 10))
	save(t, s, fullAccount("acc-b", 11))
	a := appendLog(t, s, "acc-a", eventLog(4))
	b := appendLog(t, s, "acc-b", eventLog(3))
	if got := listEvents(t, s, "acc-a", model.EventFilter{}); !reflect.DeepEqual(got, a) {
		t.Fatalf("acc-a after acc-b's appends: %s, want %s", seqs(got), seqs(a))
	}
	if got := listEvents(t, s, "acc-b", model.EventFilter{Before: a[0].Seq + 100}); !reflect.DeepEqual(got, b) {
		t.Fatalf("acc-b: %s, want %s", seqs(got), seqs(b))
	}
	if got := listEvents(t, s, "nope", model.EventFilter{}); got == nil || len(got) != 0 {
		t.Fatalf("missing account: %+v, want an empty list", got)
	}
}

func seqs(events []model.Event) string {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range events {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d:%s", e.Seq, e.Action)
	}
	return b.String() + "]"
}
