package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"petrel/management/store"
)

// writerLock is the session advisory lock key held by the one petrel-server
// writing to a database ("petrel" in ASCII). Advisory locks are per
// database, so servers on other databases of the same cluster do not
// conflict. It differs from migrationLock.
const writerLock = 0x70657472656c

// lockAppName prefixes the application_name of the lock-holding session, so
// a refused server can name the holder (pg_stat_activity).
const lockAppName = "petrel-server writer lock"

// acquireWriterLock opens a dedicated connection (outside the pool, so the
// session and its lock live until Close) and takes writerLock without
// waiting: exclusively for a single-writer store, in shared mode for one
// of several petrel-servers (OpenShared, --ha). Shared holders exclude an
// exclusive one and the reverse, so a server without --ha never writes
// beside servers that follow each other's commits. When the lock is taken
// in the other mode, it fails with store.ErrLocked naming the database
// and, when visible, a holder.
func acquireWriterLock(ctx context.Context, cfg *pgxpool.Config, shared bool) (*pgx.Conn, error) {
	cc := cfg.ConnConfig.Copy()
	host, _ := os.Hostname()
	cc.RuntimeParams["application_name"] = fmt.Sprintf("%s (pid %d on %s)", lockAppName, os.Getpid(), host)
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("connect for writer lock: %w", err)
	}
	try := `SELECT pg_try_advisory_lock($1)`
	if shared {
		try = `SELECT pg_try_advisory_lock_shared($1)`
	}
	var ok bool
	if err := conn.QueryRow(ctx, try, int64(writerLock)).Scan(&ok); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("take writer lock: %w", err)
	}
	if ok {
		return conn, nil
	}
	defer conn.Close(ctx)
	var db, holder string
	conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db)
	// Best effort: the holder's session as pg_stat_activity shows it
	// (bigint advisory keys are split into classid = high, objid = low).
	conn.QueryRow(ctx, `SELECT coalesce(a.application_name, '') || ' backend ' || a.pid ||
			coalesce(' from ' || host(a.client_addr), '')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND l.classid = $1 AND l.objid = $2
		LIMIT 1`, uint32(writerLock>>32), uint32(writerLock&0xffffffff)).Scan(&holder)
	if holder != "" {
		holder = " (" + holder + ")"
	}
	what := "another petrel-server (or petrel-servers running with --ha)"
	if shared {
		what = "a petrel-server running without --ha"
	}
	return nil, fmt.Errorf("database %s is in use by %s%s: advisory lock %s is held: %w",
		strconv.Quote(db), what, holder, "0x"+strconv.FormatInt(writerLock, 16), store.ErrLocked)
}

// releaseWriterLock ends the lock session (which drops the lock).
func releaseWriterLock(conn *pgx.Conn, shared bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlock := `SELECT pg_advisory_unlock($1)`
	if shared {
		unlock = `SELECT pg_advisory_unlock_shared($1)`
	}
	conn.Exec(ctx, unlock, int64(writerLock))
	conn.Close(ctx)
}
