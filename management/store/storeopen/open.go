// Package storeopen picks and opens a store.Store implementation from a
// spec string. It lives apart from package store because the
// implementations import store (for the interface and sentinel errors), so
// store cannot import them.
//
// Imported by cmd/petrel-server (and tests). Open is safe for concurrent use.
package storeopen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"petrel/management/store"
	"petrel/management/store/postgres"
	"petrel/management/store/sqlite"
)

// DefaultFile is the SQLite file name used inside the data directory.
const DefaultFile = "petrel.db"

// Open opens the store described by spec:
//
//	"" or "sqlite"                  SQLite at dataDir/petrel.db
//	"sqlite:///abs/path.db"         SQLite at /abs/path.db
//	"sqlite://rel/path.db"          SQLite at rel/path.db
//	"postgres://…", "postgresql://…" PostgreSQL (pgx connection URL)
//
// Pending migrations are applied; a database newer than this binary fails
// with store.ErrSchemaNewer. Errors never contain the spec (it may hold a
// password).
func Open(ctx context.Context, spec, dataDir string, log *slog.Logger) (store.Store, error) {
	kind, path, err := Parse(spec, dataDir)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "sqlite":
		s, err := sqlite.Open(ctx, path, log)
		if err != nil {
			return nil, fmt.Errorf("open sqlite store: %w", err)
		}
		return s, nil
	default:
		s, err := postgres.Open(ctx, spec, log)
		if err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		return s, nil
	}
}

// OpenShared opens a PostgreSQL store shared by several petrel-servers
// (--ha; postgres.OpenShared). Any other spec is an error.
func OpenShared(ctx context.Context, spec string, log *slog.Logger) (*postgres.Store, error) {
	kind, _, err := Parse(spec, ".") // any directory: only the kind matters
	if err == nil && kind != "postgres" {
		err = errors.New("open store: several instances (--ha) need a postgres:// store")
	}
	if err != nil {
		return nil, err
	}
	s, err := postgres.OpenShared(ctx, spec, log)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return s, nil
}

// Parse classifies spec: kind is "sqlite" (path is the database file) or
// "postgres" (path is empty; the spec is the DSN).
func Parse(spec, dataDir string) (kind, path string, err error) {
	switch {
	case spec == "" || spec == "sqlite":
		if dataDir == "" {
			return "", "", errors.New("open store: sqlite needs a data directory")
		}
		return "sqlite", filepath.Join(dataDir, DefaultFile), nil
	case strings.HasPrefix(spec, "sqlite://"):
		p := strings.TrimPrefix(spec, "sqlite://")
		if p == "" {
			return "", "", errors.New("open store: empty sqlite path")
		}
		return "sqlite", p, nil
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return "postgres", "", nil
	}
	scheme, _, _ := strings.Cut(spec, ":")
	if len(scheme) > 16 {
		scheme = scheme[:16]
	}
	return "", "", fmt.Errorf("open store: unknown store type %q (want sqlite or postgres)", scheme)
}
