package grpcapi

import (
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/internal/seal"
	"petrel/internal/zstdbody"
	"petrel/management/netmap"
	"petrel/proto/managementpb"
)

// Size limits of the Sync messages the server sends (see EncryptedMessage
// in proto/management.proto). A message over its agent's limit is not sent:
// the stream ends with ResourceExhausted, so the agent learns why instead
// of failing to receive it. Full maps stay under MaxBody by construction
// (management.DefaultMaxMapBytes); only an agent without CAPABILITY_ZSTD
// in a large account (or a huge coalesced delta, after which the agent
// resyncs in full) meets the limit.
const (
	// LegacyMaxBody bounds the sealed body sent to an agent without
	// CAPABILITY_ZSTD: such agents keep gRPC's default 4 MiB receive
	// limit, and the envelope adds the server key and a few tags.
	LegacyMaxBody = 4<<20 - 1<<10
	// MaxBody bounds the sealed body sent to an agent with CAPABILITY_ZSTD:
	// the most internal/seal opens. Such agents receive messages up to
	// mgmt.MaxReceiveMessage (16 MiB + 64 KiB), which holds it.
	MaxBody = seal.MaxMessage + seal.Overhead
)

// syncEncoder turns the SyncResponses of one stream into sealed bodies for
// what the agent declared in its SyncRequest. Used by the stream's
// goroutine only.
type syncEncoder struct {
	box     *seal.Precomputed
	zstd    *zstdbody.Encoder // nil: the agent did not declare CAPABILITY_ZSTD
	derive  bool              // the agent derives the peers' zone records
	compact bool              // the agent takes compact peers
	maxBody int
}

func newSyncEncoder(box *seal.Precomputed, req *managementpb.SyncRequest, z *zstdbody.Encoder) *syncEncoder {
	caps := req.GetCapabilities()
	e := &syncEncoder{box: box, maxBody: LegacyMaxBody,
		derive:  slices.Contains(caps, managementpb.Capability_CAPABILITY_DERIVED_PEER_RECORDS),
		compact: slices.Contains(caps, managementpb.Capability_CAPABILITY_COMPACT_PEERS)}
	if slices.Contains(caps, managementpb.Capability_CAPABILITY_ZSTD) {
		e.zstd, e.maxBody = z, MaxBody
	}
	return e
}

// encode marshals r (without what the agent derives or does not use),
// compresses it when the agent accepts that and it pays, and seals it. A
// message the agent could not receive is a ResourceExhausted status.
func (e *syncEncoder) encode(r *managementpb.SyncResponse) (*managementpb.EncryptedMessage, error) {
	if e.derive {
		r = netmap.WithoutPeerRecords(r)
	}
	if e.compact {
		r = netmap.CompactPeers(r)
	}
	b, err := proto.Marshal(r)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "marshal sync response: %v", err)
	}
	comp := managementpb.Compression_COMPRESSION_NONE
	if e.zstd != nil {
		if len(b) > zstdbody.MaxDecoded {
			return nil, status.Errorf(codes.ResourceExhausted,
				"sync message of %d bytes is over the %d bytes an agent decodes", len(b), zstdbody.MaxDecoded)
		}
		if z, ok := e.zstd.Compress(b); ok {
			b, comp = z, managementpb.Compression_COMPRESSION_ZSTD
		}
	}
	if n := len(b) + seal.Overhead; n > e.maxBody {
		msg := fmt.Sprintf("sync message of %d bytes is over the %d bytes this agent can receive", n, e.maxBody)
		if e.zstd == nil {
			msg += "; upgrade the agent: agents that accept compressed maps receive them"
		}
		return nil, status.Error(codes.ResourceExhausted, msg)
	}
	sealed, err := e.box.Seal(b)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "seal sync response: %v", err)
	}
	return &managementpb.EncryptedMessage{Body: sealed, Version: ProtocolVersion, Compression: comp}, nil
}
