package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"

	"petrel/management"
	"petrel/management/store/storeopen"
)

// AdminTokenRequest says where CreateAdminToken finds the store and which
// account gets the token.
type AdminTokenRequest struct {
	DataDir string
	Store   string // storeopen spec, as Config.Store
	Account string // account ID; "" = the only account
	Name    string // token name; "" = "recovered"
	Logger  *slog.Logger
}

// CreateAdminToken adds an admin API token to an account directly in the
// store and returns the plain token. It is for recovering a lost admin
// token with petrel-server stopped: a running server holds accounts in
// memory and accepts the new token only after a restart. It refuses to
// create a SQLite database that does not exist yet (a wrong data dir).
func CreateAdminToken(ctx context.Context, req AdminTokenRequest) (token, accountID string, err error) {
	log := req.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if req.Name == "" {
		req.Name = "recovered"
	}
	kind, path, err := storeopen.Parse(req.Store, req.DataDir)
	if err != nil {
		return "", "", err
	}
	if kind == "sqlite" {
		if _, err := os.Stat(path); err != nil {
			return "", "", fmt.Errorf("no database at %s (check --data-dir and --store): %w", path, err)
		}
	}
	st, err := storeopen.Open(ctx, req.Store, req.DataDir, log)
	if err != nil {
		return "", "", err
	}
	defer st.Close()
	svc, err := management.New(management.Config{Store: st, Logger: log})
	if err != nil {
		return "", "", fmt.Errorf("create management: %w", err)
	}
	if err := svc.Start(ctx); err != nil {
		return "", "", fmt.Errorf("start management: %w", err)
	}
	defer svc.Stop()
	accounts := svc.Accounts()
	switch {
	case req.Account != "":
		if !slices.Contains(accounts, req.Account) {
			return "", "", fmt.Errorf("account %q not found", req.Account)
		}
		accountID = req.Account
	case len(accounts) == 1:
		accountID = accounts[0]
	case len(accounts) == 0:
		return "", "", errors.New("the store has no account yet: start petrel-server once to create it")
	default:
		return "", "", fmt.Errorf("the store has %d accounts; choose one with --account", len(accounts))
	}
	if token, err = svc.CreateAdminToken(ctx, accountID, req.Name); err != nil {
		return "", "", fmt.Errorf("create admin token: %w", err)
	}
	return token, accountID, nil
}
