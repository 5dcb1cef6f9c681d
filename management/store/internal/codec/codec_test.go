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
		"empty id":           &model.Group{},
		"peer without ip":    &model.Peer{ID: "p"},
		"key without hash":   &model.SetupKey{ID: "k"},
		"token without hash": &model.AdminToken{ID: "t"},
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
