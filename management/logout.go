package management

import (
	"context"

	"petrel/internal/keys"
)

// Logout deletes the peer registered with peerKey, at its own request
// (`petrel logout`). It takes the path of an admin's delete: the peer
// leaves its groups, routes it served alone go, its Sync stream closes and
// the other peers' maps drop it, so its name is free for the next
// registration. An unknown key is KindNotFound.
func (s *Service) Logout(ctx context.Context, peerKey keys.Public) error {
	if err := s.running(); err != nil {
		return err
	}
	ref, ok := s.lookupKey(peerKey)
	if !ok {
		return Errorf(KindNotFound, "logout: this key is not a registered peer")
	}
	ctx = WithPrincipal(ctx, Principal{AccountID: ref.accountID, PeerID: ref.peerID}) // the audit actor
	if err := s.deletePeer(ctx, ref.accountID, ref.peerID, false); err != nil {
		return err
	}
	s.log.Info("peer logged out", "account", ref.accountID, "peer", ref.peerID)
	return nil
}
