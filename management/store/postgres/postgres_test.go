package postgres

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"petrel/management/model"
	"petrel/management/store"
	"petrel/management/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLog(t testing.TB) *slog.Logger { return storetest.Log(t, slog.LevelWarn) }

func openFresh(t testing.TB) *Store {
	dsn := storetest.PostgresDSN(t)
	s, err := Open(context.Background(), dsn, testLog(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
}

func TestReopen(t *testing.T) {
	storetest.RunReopen(t, func(t *testing.T) storetest.DB {
		dsn := storetest.PostgresDSN(t)
		return storetest.DB{
			Open: func() (store.Store, error) { return Open(context.Background(), dsn, testLog(t)) },
			Exec: func(q string) error {
				ctx := context.Background()
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					return err
				}
				defer conn.Close(ctx)
				_, err = conn.Exec(ctx, q)
				return err
			},
		}
	})
}

// TestSerializationRetry makes the first attempt fail with SQLSTATE 40001
// (a row changed by another transaction after our snapshot) and checks
// that Update runs fn again and commits.
func TestSerializationRetry(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hash := []byte("0123456789abcdef0123456789abcdef")
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccount(model.NewAccount("acc", netip.MustParsePrefix("100.64.0.0/16"), time.Unix(1, 0).UTC())); err != nil {
			return err
		}
		return tx.Put("acc", &model.SetupKey{ID: "k", KeyHash: hash, Reusable: true})
	}); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	calls := 0
	err = s.Update(ctx, func(tx store.Tx) error {
		calls++
		if _, _, err := tx.UseSetupKey([]byte("unknown"), time.Unix(2, 0)); !errors.Is(err, store.ErrKeyInvalid) {
			return err // takes the snapshot
		}
		if calls == 1 {
			if _, err := other.Exec(ctx, "UPDATE setup_keys SET used_times = 5"); err != nil {
				return err
			}
		}
		_, _, err := tx.UseSetupKey(hash, time.Unix(3, 0))
		return err
	})
	if err != nil || calls != 2 {
		t.Fatalf("update: err=%v calls=%d, want nil after 2 calls", err, calls)
	}
	if n := s.Retries(); n != 1 {
		t.Fatalf("retries counted %d, want 1", n)
	}
	list, err := s.LoadAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := list[0].SetupKeys["k"].UsedTimes; got != 6 {
		t.Fatalf("used times %d, want 6", got)
	}
}

func TestRetryable(t *testing.T) {
	if retryable(errors.New("x")) {
		t.Fatal("plain error retryable")
	}
}

func BenchmarkUpdatePutPeer(b *testing.B) { storetest.BenchUpdatePut(b, openFresh(b)) }

func BenchmarkLoadAccounts5000(b *testing.B) { storetest.BenchLoadAccounts(b, openFresh(b), 5000) }
