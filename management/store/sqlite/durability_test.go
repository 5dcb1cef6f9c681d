package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestDurabilityChecked: Open's read-back of the durability settings passes
// on the store's own write connection and refuses a connection on which any
// of them is weakened (as a DSN typo, a driver that stops honouring a key,
// or a filesystem where WAL cannot be enabled would leave it).
func TestDurabilityChecked(t *testing.T) {
	s := openTemp(t)
	if err := checkDurability(context.Background(), s.write); err != nil {
		t.Fatalf("store's write connection: %v", err)
	}
	const good = "_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1"
	for _, c := range []struct{ dsn, pragma string }{
		{"_journal_mode=MEMORY&_synchronous=FULL&_foreign_keys=1", "journal_mode"},
		{"_journal_mode=DELETE&_synchronous=FULL&_foreign_keys=1", "journal_mode"},
		{"_journal_mode=WAL&_synchronous=OFF&_foreign_keys=1", "synchronous"},
		{"_journal_mode=WAL&_synchronous=NORMAL&_foreign_keys=1", "synchronous"},
		{"_journal_mode=WAL&_synchronous=FULL&_foreign_keys=0", "foreign_keys"},
		{good, ""},
	} {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "x.db")+"?"+c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		err = checkDurability(context.Background(), db)
		db.Close()
		switch {
		case c.pragma == "" && err != nil:
			t.Errorf("%s: %v, want accepted", c.dsn, err)
		case c.pragma != "" && (err == nil || !strings.Contains(err.Error(), "pragma "+c.pragma)):
			t.Errorf("%s: %v, want refused naming %s", c.dsn, err, c.pragma)
		}
	}
}
