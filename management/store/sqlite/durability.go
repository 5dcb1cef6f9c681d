package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// durablePragmas are the connection settings the store's crash safety rests
// on, with the values Open asks for in the DSN:
//
//   - journal_mode=WAL: a commit appends to the -wal file and the database
//     file only changes at checkpoints, so a process killed mid-write leaves
//     the last committed state (the torn tail of the WAL is ignored on the
//     next open). MEMORY or OFF would let a kill during a commit tear the
//     database file.
//   - synchronous=FULL (2): every commit fsyncs the WAL before Update
//     returns, so an acknowledged write also survives an OS crash or power
//     loss. NORMAL would survive a process kill but may lose the last
//     commits on power loss.
//   - foreign_keys=1: objects cannot outlive their account (ON DELETE
//     CASCADE) nor be written into a missing one.
//
// SQLite answers a journal_mode change it cannot make (a VFS without shared
// memory, a read-only file) with the old mode and no error, and the driver
// does not look, so Open reads them back.
var durablePragmas = []struct{ name, want string }{
	{"journal_mode", "wal"},
	{"synchronous", "2"},
	{"foreign_keys", "1"},
}

// checkDurability reads durablePragmas back on db (the write pool, whose one
// connection makes every write) and refuses any that did not take effect.
func checkDurability(ctx context.Context, db *sql.DB) error {
	for _, p := range durablePragmas {
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(&got); err != nil {
			return fmt.Errorf("read pragma %s: %w", p.name, err)
		}
		if !strings.EqualFold(got, p.want) {
			return fmt.Errorf("pragma %s is %q, want %q: the database would not be crash-safe", p.name, got, p.want)
		}
	}
	return nil
}
