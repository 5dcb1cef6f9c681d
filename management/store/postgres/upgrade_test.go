package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"petrel/management/store"
	"petrel/management/store/internal/migrate"
	"petrel/management/store/storetest"
)

// upgradeFixtures holds vNNNN.sql: the upgrade data set as schema NNNN
// stores it in PostgreSQL.
const upgradeFixtures = "testdata/upgrade"

func migrations(t *testing.T) []migrate.Migration {
	t.Helper()
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestUpgradeFromEveryVersion: a database an older petrel-server left at
// any earlier schema version, holding real data of that version, opens with
// this one and its data is all there and usable.
func TestUpgradeFromEveryVersion(t *testing.T) {
	ms := migrations(t)
	storetest.RunUpgrade(t, storetest.Upgrade{
		Latest:   migrate.Latest(ms),
		Fixtures: os.DirFS(upgradeFixtures),
		NewDB: func(t *testing.T) storetest.UpgradeDB {
			dsn := storetest.PostgresDSN(t)
			return storetest.UpgradeDB{
				DB: serverDB(t, dsn),
				OpenAt: func(n int) (store.Store, error) {
					return open(context.Background(), dsn, ms[:n], testLog(t), false)
				},
			}
		},
	})
}

// TestUpgradeFixturesCoverMigrations: every migration has its fixture (no
// PostgreSQL needed).
func TestUpgradeFixturesCoverMigrations(t *testing.T) {
	storetest.CheckUpgradeFixtures(t, os.DirFS(upgradeFixtures), migrate.Latest(migrations(t)))
}

// serverDB is the database at dsn, opened by this binary's Open or by a
// bare connection for raw SQL.
func serverDB(t *testing.T, dsn string) storetest.DB {
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
}
