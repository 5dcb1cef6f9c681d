package grpcapi

import (
	"context"

	"petrel/management"
	"petrel/proto/managementpb"
)

// ReportPeers opens a sealed ReportPeersRequest (the agent's view of its
// peers' paths), records it and answers with a sealed, empty
// ReportPeersResponse. Only the holder of a registered peer's key can seal
// it, so a peer reports only for itself; a replayed report is refused like
// a replayed Login. The service bounds and rate-limits reports
// (management.Service.ReportPeers).
func (s *Server) ReportPeers(ctx context.Context, in *managementpb.EncryptedMessage) (*managementpb.EncryptedMessage, error) {
	req := &managementpb.ReportPeersRequest{}
	peer, err := s.open(in, req)
	if err != nil {
		return nil, err
	}
	if !s.svc.IsPeerKey(peer) {
		return nil, s.toStatus("report peers", peer, management.Errorf(management.KindNotFound, "report peers: this key is not a registered peer"))
	}
	if err := s.fresh(ctx, "report peers", peer, req.GetSentUnixMs(), req.GetNonce()); err != nil {
		return nil, err
	}
	if err := s.svc.ReportPeers(peer, req); err != nil {
		return nil, s.toStatus("report peers", peer, err)
	}
	return s.seal(peer, &managementpb.ReportPeersResponse{})
}
