package grpcapi

import (
	"context"

	"petrel/management"
	"petrel/proto/managementpb"
)

// ReportDNSQuery opens a sealed DNSQueryResult (an agent's answer to a DNS
// test the server sent down its Sync stream), hands it to the service and
// answers with a sealed, empty ReportDNSQueryResponse. Only the holder of
// a registered peer's key can seal it, so a peer answers only for itself;
// a replayed answer is refused like a replayed Login. The service
// rate-limits answers and ignores those to queries it did not send this
// peer (management.Service.ReportDNSQuery).
func (s *Server) ReportDNSQuery(ctx context.Context, in *managementpb.EncryptedMessage) (*managementpb.EncryptedMessage, error) {
	req := &managementpb.DNSQueryResult{}
	peer, err := s.open(in, req)
	if err != nil {
		return nil, err
	}
	if !s.svc.IsPeerKey(peer) {
		return nil, s.toStatus("report DNS query", peer, management.Errorf(management.KindNotFound, "report DNS query: this key is not a registered peer"))
	}
	if err := s.fresh(ctx, "report DNS query", peer, req.GetSentUnixMs(), req.GetNonce()); err != nil {
		return nil, err
	}
	if err := s.svc.ReportDNSQuery(peer, req); err != nil {
		return nil, s.toStatus("report DNS query", peer, err)
	}
	return s.seal(peer, &managementpb.ReportDNSQueryResponse{})
}
