package server

import (
	"context"
	"fmt"
	"os"

	"petrel/internal/keys"
	"petrel/management/model"
)

// bootstrap creates the default account on an empty store, writes its admin
// token to TokenFile (0600, atomically, before anything else can fail) and
// adds the default policy. On a store that has an account it only warns
// when the token file is missing.
func (s *Server) bootstrap(ctx context.Context) error {
	token, created, err := s.mgmt.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap account: %w", err)
	}
	path := s.TokenFile()
	if !created {
		if _, err := os.Stat(path); err != nil {
			if s.cfg.HA {
				// Another instance created the account and holds the file.
				s.log.Info("the account was created by another instance; its data dir holds the admin token file (copy it here to use it on this host)", "path", path)
				return nil
			}
			s.log.Warn("the store has an account but the admin token file is missing; use a saved copy or run `petrel-server admin-token create` with the server stopped", "path", path)
		}
		return nil
	}
	if err := keys.WriteFileAtomic(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	s.adminToken = token
	if err := s.addDefaultPolicy(ctx); err != nil {
		return err
	}
	s.log.Info("created the default account; admin token written", "path", path)
	return nil
}

// addDefaultPolicy lets every peer of a new default account reach every
// other (All <-> All), as users of a mesh VPN expect on first start; admins
// tighten or disable it through the API.
func (s *Server) addDefaultPolicy(ctx context.Context) error {
	acct := s.mgmt.Accounts()[0]
	snap, err := s.mgmt.Snapshot(acct)
	if err != nil {
		return fmt.Errorf("read default account: %w", err)
	}
	var all string
	for id, g := range snap.Groups {
		if g.Name == model.AllGroupName {
			all = id
		}
	}
	_, err = s.mgmt.Put(ctx, acct, &model.Policy{Name: "Default", Description: "every peer reaches every peer",
		Enabled: true, Rules: []model.PolicyRule{{Name: "all-to-all", Sources: []string{all}, Destinations: []string{all},
			Protocol: model.ProtoAll, Bidirectional: true, Action: model.ActionAccept}}})
	if err != nil {
		return fmt.Errorf("create default policy: %w", err)
	}
	return nil
}
