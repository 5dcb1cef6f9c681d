package storetest

import (
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/store"
)

func useKey(t *testing.T, s store.Store, h []byte, now time.Time) (string, *model.SetupKey, error) {
	t.Helper()
	var (
		acc string
		key *model.SetupKey
	)
	err := s.Update(ctxFor(t), func(tx store.Tx) error {
		var err error
		acc, key, err = tx.UseSetupKey(h, now)
		return err
	})
	return acc, key, err
}

func testUseSetupKey(t *testing.T, s store.Store) {
	now := ts(1750000000, 555)
	a := model.NewAccount("acc", netip16(10), ts(1700000000, 0))
	mk := func(id string, f func(k *model.SetupKey)) *model.SetupKey {
		k := &model.SetupKey{ID: id, Name: id, KeyHash: hash(id), KeyPrefix: id[:2], CreatedAt: ts(1700000000, 1),
			AutoGroups: []string{"g"}}
		f(k)
		a.SetupKeys[id] = k
		return k
	}
	mk("oneoff", func(k *model.SetupKey) { k.UsageLimit = 1 })
	mk("limit3", func(k *model.SetupKey) { k.Reusable, k.UsageLimit = true, 3 })
	mk("unlimited", func(k *model.SetupKey) { k.Reusable = true; k.ExpiresAt = now.Add(time.Nanosecond) })
	mk("expired", func(k *model.SetupKey) { k.Reusable = true; k.ExpiresAt = now })
	mk("revoked", func(k *model.SetupKey) { k.Reusable, k.Revoked = true, true })
	mk("exhausted", func(k *model.SetupKey) { k.Reusable, k.UsageLimit, k.UsedTimes = true, 2, 2 })
	save(t, s, a)

	steps := []struct {
		key     string
		want    error
		wantUse int
	}{
		{"oneoff", nil, 1},
		{"oneoff", store.ErrKeyExhausted, 0},
		{"limit3", nil, 1},
		{"limit3", nil, 2},
		{"limit3", nil, 3},
		{"limit3", store.ErrKeyExhausted, 0},
		{"unlimited", nil, 1},
		{"unlimited", nil, 2},
		{"unlimited", nil, 3},
		{"unlimited", nil, 4},
		{"expired", store.ErrKeyExpired, 0},
		{"revoked", store.ErrKeyRevoked, 0},
		{"exhausted", store.ErrKeyExhausted, 0},
		{"unknown", store.ErrKeyInvalid, 0},
	}
	for i, st := range steps {
		acc, k, err := useKey(t, s, hash(st.key), now)
		if st.want != nil {
			if !errors.Is(err, st.want) || k != nil {
				t.Fatalf("step %d use %s: key=%v err=%v, want %v", i, st.key, k, err, st.want)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d use %s: %v", i, st.key, err)
		}
		want := *a.SetupKeys[st.key]
		want.UsedTimes, want.LastUsed = st.wantUse, now
		if acc != "acc" || !reflect.DeepEqual(k, &want) {
			t.Fatalf("step %d use %s: acc=%q key=%+v, want %+v", i, st.key, acc, k, want)
		}
	}
	got := load(t, s)["acc"].SetupKeys
	for id, want := range map[string]int{"oneoff": 1, "limit3": 3, "unlimited": 4, "expired": 0, "revoked": 0, "exhausted": 2} {
		if got[id].UsedTimes != want {
			t.Errorf("%s used %d times, want %d", id, got[id].UsedTimes, want)
		}
		if want == 0 && !got[id].LastUsed.IsZero() {
			t.Errorf("%s: failed use set LastUsed", id)
		}
	}
	if !got["oneoff"].LastUsed.Equal(now) || got["oneoff"].LastUsed.Location() != time.UTC {
		t.Errorf("oneoff LastUsed = %v, want %v UTC", got["oneoff"].LastUsed, now)
	}
}

// testOneOffRace: 50 registrations race for one one-off key; each also
// inserts its own peer. Exactly one may win, leaving exactly one peer.
func testOneOffRace(t *testing.T, s store.Store) {
	a := model.NewAccount("acc", netip16(10), ts(1700000000, 0))
	a.SetupKeys["k"] = &model.SetupKey{ID: "k", KeyHash: hash("race"), UsageLimit: 1}
	save(t, s, a)
	const n = 50
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		errs []error
	)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			err := s.Update(ctxFor(t), func(tx store.Tx) error {
				acc, _, err := tx.UseSetupKey(hash("race"), ts(1750000000, int64(i)))
				if err != nil {
					return err
				}
				return tx.Put(acc, peer(i+1, 10))
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrKeyExhausted):
				errs = append(errs, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("unexpected errors (%d), first: %v", len(errs), errs[0])
	}
	got := load(t, s)["acc"]
	if wins != 1 || len(got.Peers) != 1 || got.SetupKeys["k"].UsedTimes != 1 {
		t.Fatalf("wins=%d peers=%d used=%d, want 1/1/1", wins, len(got.Peers), got.SetupKeys["k"].UsedTimes)
	}
}

func testServerKey(t *testing.T, s store.Store) {
	const n = 16
	got := make([]keys.Private, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = s.ServerKey(ctxFor(t))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("server key %d: %v", i, errs[i])
		}
		if got[i] != got[0] || got[i].IsZero() {
			t.Fatalf("server key %d differs or is zero", i)
		}
	}
	again, err := s.ServerKey(ctxFor(t))
	if err != nil || again != got[0] {
		t.Fatalf("second call: equal=%v err=%v", again == got[0], err)
	}
}

func testSchemaVersion(t *testing.T, s store.Store) {
	v, err := s.SchemaVersion(ctxFor(t))
	if err != nil || v < 1 {
		t.Fatalf("schema version = %d, %v; want >= 1", v, err)
	}
}
