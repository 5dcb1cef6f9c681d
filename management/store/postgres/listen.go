package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"petrel/internal/backoff"
	"petrel/management/store"
)

// ListenerAppName prefixes the application_name of Follow's connection
// (pg_stat_activity shows it; tests terminate it by this name).
const ListenerAppName = "petrel-server listener"

// listenIdle is how long Follow waits for a notification before checking
// that its connection still answers (a peer that vanished without closing
// the TCP connection would otherwise leave it waiting for ever).
const listenIdle = 30 * time.Second

var _ store.Feed = (*Store)(nil)

// Follow implements store.Feed on a connection of its own (outside the
// pool): it connects, runs LISTEN petrel_account, calls resync, then calls
// changed for each notification. When the connection fails (network,
// server restart, pg_terminate_backend) it reconnects with backoff and
// calls resync again after the new LISTEN. Only a store opened with
// OpenShared sends notifications; on another, Follow only resyncs.
func (s *Store) Follow(ctx context.Context, changed func(store.Change), resync func()) error {
	cc := s.pool.Config().ConnConfig.Copy()
	host, _ := os.Hostname()
	cc.RuntimeParams["application_name"] = fmt.Sprintf("%s (pid %d on %s)", ListenerAppName, os.Getpid(), host)
	bo := backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second, Factor: 2, Jitter: 0.5}
	for {
		err := s.listenOnce(ctx, cc, changed, func() {
			bo.Reset()
			resync()
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := bo.Next()
		s.log.Warn("account change listener lost; reconnecting", "err", err, "in", d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// listenOnce runs one listener connection until it fails or ctx ends.
func (s *Store) listenOnce(ctx context.Context, cc *pgx.ConnConfig, changed func(store.Change), listening func()) error {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("connect listener: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			c, perr := parsePayload(n.Payload)
			if perr != nil {
				s.log.Warn("ignoring notification", "payload", n.Payload, "err", perr)
				continue
			}
			changed(c)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
			// Idle: the connection is kept (a deadline does not close it);
			// check that the server still answers.
			pctx, cancel := context.WithTimeout(ctx, listenIdle)
			_, err := conn.Exec(pctx, "SELECT 1")
			cancel()
			if err != nil {
				return fmt.Errorf("listener health check: %w", err)
			}
		default:
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// parsePayload reads "<account id> <version>".
func parsePayload(p string) (store.Change, error) {
	id, v, ok := strings.Cut(p, " ")
	if !ok || id == "" {
		return store.Change{}, errors.New("want \"<account id> <version>\"")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return store.Change{}, fmt.Errorf("version: %w", err)
	}
	return store.Change{AccountID: id, Version: n}, nil
}

// Versions returns every account's stored version.
func (s *Store) Versions(ctx context.Context) (map[string]int64, error) {
	rs, err := s.pool.Query(ctx, `SELECT id, version FROM accounts`)
	if err != nil {
		return nil, fmt.Errorf("read account versions: %w", err)
	}
	out := map[string]int64{}
	var id string
	var v int64
	if _, err := pgx.ForEachRow(rs, []any{&id, &v}, func() error { out[id] = v; return nil }); err != nil {
		return nil, fmt.Errorf("read account versions: %w", err)
	}
	return out, nil
}

// AccountVersion returns one account's stored version.
func (s *Store) AccountVersion(ctx context.Context, id string) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM accounts WHERE id = $1`, id).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, store.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("read account version: %w", err)
	}
	return v, nil
}
