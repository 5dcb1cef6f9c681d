package rows

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/internal/codec"
)

func TestChangeLogRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 0, 0, 5, time.UTC)
	peer := &model.Peer{ID: "p1", Name: "web", DNSLabel: "web", PublicKey: "k1", IP: netip.MustParseAddr("100.64.0.2"),
		CreatedAt: at, Meta: model.PeerMeta{OS: "linux"}}
	key := &model.SetupKey{ID: "k", Name: "ci", KeyHash: []byte{1, 2, 3}, Reusable: true, UsageLimit: 5, UsedTimes: 2,
		ExpiresAt: at.Add(time.Hour), LastUsed: at, AutoGroups: []string{"g"}}
	var l ChangeLog
	for _, obj := range []model.Object{peer, key} {
		r, err := codec.Encode(obj)
		if err != nil {
			t.Fatal(err)
		}
		l.put("acc", r)
	}
	l.remove("acc", model.KindPolicy, "pol")
	settings, _ := codec.EncodeSettings(model.Settings{DNSDomain: "x.example", LoginExpiration: time.Hour})
	l.settings("acc", settings)
	l.create("fresh")
	l.put("fresh", codec.Row{Kind: model.KindGroup, ID: "g", Data: []byte(`{}`)}) // created, not bumped: not logged
	l.bump("acc", 8)
	l.bump("empty", 3)

	rs, err := l.Rows()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].AccountID != "acc" || rs[0].Version != 8 || rs[1].AccountID != "empty" || rs[1].Changes != "[]" {
		t.Fatalf("rows %+v", rs)
	}
	c, err := DecodeChange(rs[0].Version, rs[0].Changes)
	if err != nil {
		t.Fatal(err)
	}
	wantPeer, _ := codec.Decode(mustEncode(t, peer))
	wantKey, _ := codec.Decode(mustEncode(t, key))
	want := store.AccountChange{Version: 8, Ops: []store.ChangeOp{
		{Put: wantPeer}, {Put: wantKey},
		{Delete: &store.ObjectRef{Kind: model.KindPolicy, ID: "pol"}},
		{Settings: &model.Settings{DNSDomain: "x.example", LoginExpiration: time.Hour}},
	}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded %+v\nwant    %+v", c, want)
	}
	if c, err := DecodeChange(3, rs[1].Changes); err != nil || len(c.Ops) != 0 {
		t.Fatalf("empty change: %+v, %v", c, err)
	}
}

func mustEncode(t *testing.T, obj model.Object) codec.Row {
	t.Helper()
	r, err := codec.Encode(obj)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDecodeChangeRejects: a row the decoder cannot use is an error (the
// follower then reloads the account), never a partial change.
func TestDecodeChangeRejects(t *testing.T) {
	for _, tc := range []struct{ name, text, msg string }{
		{"not json", `{`, "decode change log"},
		{"not a list", `{"put":{}}`, "decode change log"},
		{"no operation", `[{}]`, "0 operations"},
		{"two operations", `[{"delete":{"kind":"group","id":"g"},"settings":{}}]`, "2 operations"},
		{"unknown kind deleted", `[{"delete":{"kind":"planet","id":"x"}}]`, "delete of"},
		{"delete without id", `[{"delete":{"kind":"group","id":""}}]`, "delete of"},
		{"unknown kind put", `[{"put":{"kind":"planet","id":"x","data":{}}}]`, "write 0"},
		{"bad document", `[{"put":{"kind":"group","id":"g","data":"text"}}]`, "write 0"},
		{"bad settings", `[{"settings":[1]}]`, "settings"},
		{"null settings", `[{"settings":null}]`, "null settings"},
		{"null document", `[{"put":{"kind":"group","id":"g","data":null}}]`, "without a document"},
		{"no document", `[{"put":{"kind":"group","id":"g"}}]`, "without a document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeChange(1, tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("DecodeChange(%s) = %+v, %v; want an error with %q", tc.text, c, err, tc.msg)
			}
		})
	}
}

// FuzzDecodeChange: any stored text decodes or errors; it never panics.
func FuzzDecodeChange(f *testing.F) {
	f.Add(`[{"put":{"kind":"group","id":"g","name":"x","data":{"peer_ids":["a"]}}},{"delete":{"kind":"peer","id":"p"}},{"settings":{}}]`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, text string) {
		c, err := DecodeChange(1, text)
		if err == nil {
			for _, op := range c.Ops {
				if (op.Put != nil) == (op.Delete != nil) && (op.Put != nil) == (op.Settings != nil) {
					t.Fatalf("operation with not exactly one field: %+v", op)
				}
			}
		}
	})
}

// TestChangeLogRefusesUnloggedWrites: a write to an account the
// transaction neither advanced nor created would reach no other instance;
// Rows refuses it (and the transaction fails).
func TestChangeLogRefusesUnloggedWrites(t *testing.T) {
	var l ChangeLog
	l.bump("a", 2)
	l.put("b", codec.Row{Kind: model.KindGroup, ID: "g", Data: []byte(`{}`)})
	if _, err := l.Rows(); err == nil || !strings.Contains(err.Error(), "without advancing its version") {
		t.Fatalf("Rows = %v, want the unlogged write refused", err)
	}
}
