package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"petrel/management/store"
	"petrel/management/store/internal/migrate"
	"petrel/management/store/storetest"
)

// upgradeFixtures holds vNNNN.sql: the upgrade data set as schema NNNN
// stores it in SQLite.
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
			path := filepath.Join(t.TempDir(), "petrel.db")
			return storetest.UpgradeDB{
				DB: fileDB(t, path),
				OpenAt: func(n int) (store.Store, error) {
					return open(context.Background(), path, ms[:n], testLog(t))
				},
			}
		},
	})
}

// TestUpgradeFixturesCoverMigrations: every migration has its fixture.
func TestUpgradeFixturesCoverMigrations(t *testing.T) {
	storetest.CheckUpgradeFixtures(t, os.DirFS(upgradeFixtures), migrate.Latest(migrations(t)))
}

// fileDB is the database file at path, opened by this binary's Open or by
// a bare connection for raw SQL.
func fileDB(t *testing.T, path string) storetest.DB {
	return storetest.DB{
		Open: func() (store.Store, error) { return Open(context.Background(), path, testLog(t)) },
		Exec: func(q string) error {
			db, err := sql.Open("sqlite", "file:"+path+"?_foreign_keys=1")
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = db.Exec(q)
			return err
		},
	}
}
