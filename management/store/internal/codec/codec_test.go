package codec

import (
	"errors"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
)

func TestKeyUseError(t *testing.T) {
	now := time.Unix(1000, 0)
	n := func(sec int64) *int64 { v := sec * int64(time.Second); return &v }
	cases := []struct {
		name string
		row  Row
		want error
	}{
		{"usable", Row{UsageLimit: 1}, nil},
		{"unlimited", Row{UsedTimes: 99}, nil},
		{"revoked wins", Row{Revoked: true, ExpiresAt: n(1), UsageLimit: 1, UsedTimes: 1}, store.ErrKeyRevoked},
		{"expired at now", Row{ExpiresAt: n(1000)}, store.ErrKeyExpired},
		{"not yet expired", Row{ExpiresAt: n(1001)}, nil},
		{"exhausted", Row{UsageLimit: 2, UsedTimes: 2}, store.ErrKeyExhausted},
	}
	for _, c := range cases {
		if got := KeyUseError(c.row, now); !errors.Is(got, c.want) || (c.want == nil && got != nil) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	for name, obj := range map[string]model.Object{
		"empty id":                  &model.Group{},
		"peer without ip":           &model.Peer{ID: "p"},
		"key without hash":          &model.SetupKey{ID: "k"},
		"token without hash":        &model.AdminToken{ID: "t"},
		"user without subject":      &model.User{ID: "u", Issuer: "https://idp"},
		"user without issuer":       &model.User{ID: "u", Subject: "s"},
		"access token without hash": &model.AccessToken{ID: "t"},
		"time out of range": &model.AdminToken{ID: "t", TokenHash: []byte{1},
			CreatedAt: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := Encode(obj); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestOneOffKeyLimit(t *testing.T) {
	r, err := Encode(&model.SetupKey{ID: "k", KeyHash: []byte{1}, UsageLimit: 0})
	if err != nil || r.UsageLimit != 1 {
		t.Fatalf("one-off key stored with limit %d, %v", r.UsageLimit, err)
	}
}

// TestOldDocumentsDecode: rows written before schema 3 (no identity fields
// in their documents) decode with zero values.
func TestOldDocumentsDecode(t *testing.T) {
	p, err := Decode(Row{Kind: model.KindPeer, ID: "p", IP: "100.64.0.1",
		Data: []byte(`{"name":"a","setup_key_id":"k","created_at":"2024-05-01T10:05:00.5Z","last_seen":"0001-01-01T00:00:00Z"}`)})
	if err != nil || p.(*model.Peer).UserID != "" || !p.(*model.Peer).LastLogin.IsZero() {
		t.Fatalf("old peer: %+v, %v", p, err)
	}
	g, err := Decode(Row{Kind: model.KindGroup, ID: "g", Name: "n", Data: []byte(`{"peer_ids":["p"]}`)})
	if err != nil || g.(*model.Group).IdPManaged {
		t.Fatalf("old group: %+v, %v", g, err)
	}
	s, err := DecodeSettings([]byte(`{"dns_domain":"x"}`))
	if err != nil || s.LoginExpiration != 0 || s.DNSDomain != "x" {
		t.Fatalf("old settings: %+v, %v", s, err)
	}
	s.LoginExpiration = 720*time.Hour + 1
	b, _ := EncodeSettings(s)
	if back, err := DecodeSettings(b); err != nil || back != s {
		t.Fatalf("settings round trip: %+v, %v", back, err)
	}
}

// TestUserIdentityColumn: the idp_key column is the user's identity key,
// and a row whose column disagrees with its document is refused.
func TestUserIdentityColumn(t *testing.T) {
	u := &model.User{ID: "u", Issuer: "https://idp", Subject: "s 1"}
	r, err := Encode(u)
	if err != nil || r.IdPKey != "https://idp s 1" {
		t.Fatalf("encode user: %q, %v", r.IdPKey, err)
	}
	r.IdPKey = "https://idp other"
	if _, err := Decode(r); err == nil {
		t.Fatal("decoded a user whose identity column disagrees with its document")
	}
}
