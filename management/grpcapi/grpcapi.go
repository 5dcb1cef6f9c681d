// Package grpcapi serves the agent-facing management protocol (the
// Management gRPC service of proto/management.proto) on top of the
// management Service: ServerKey in plain, Login and Sync in sealed
// envelopes between the agent's WireGuard key and the server key.
//
// A request body that does not open (tampered, truncated, sealed to another
// key, oversize, marked compressed) or does not decode is answered with
// InvalidArgument and changes nothing. Service errors map to gRPC codes by
// their kind.
//
// Sync messages are encoded per stream for what the agent declared in its
// SyncRequest (encode.go): without the peers' zone records when it derives
// them, with compact peers when it takes them, zstd-compressed before
// sealing when it accepts that, and never over the size it can receive.
//
// Imported by cmd/petrel-server only. A Server is safe for concurrent use by
// the gRPC server's goroutines; it holds no state besides the server key
// and a zstd encoder (itself safe for concurrent use).
package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/curve25519"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"petrel/internal/keys"
	"petrel/internal/replay"
	"petrel/internal/seal"
	"petrel/internal/zstdbody"
	"petrel/management"
	"petrel/proto/managementpb"
)

// ProtocolVersion is the management protocol version this server speaks.
const ProtocolVersion = 1

// MaxRequestBody bounds the sealed body of a Login or Sync request.
const MaxRequestBody = 64 << 10

// Server implements managementpb.ManagementServer.
type Server struct {
	managementpb.UnimplementedManagementServer
	svc *management.Service
	key keys.Private
	pub keys.Public
	log *slog.Logger
	zst *zstdbody.Encoder
	// replay refuses a sealed Login or Sync seen before (replay.go).
	replay *replay.Guard
	obs    atomic.Pointer[Observer] // metrics.go; nil: nobody
}

// New returns a Server for svc using the server's private key (normally
// svc.ServerKey()).
func New(svc *management.Service, key keys.Private, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{svc: svc, key: key, pub: key.Public(), log: log.With("component", "mgmt-grpc"), zst: zstdbody.NewEncoder(),
		replay: replay.New(ReplayWindow, maxNonces, nil)}
}

// Register adds the Management service to r.
func (s *Server) Register(r grpc.ServiceRegistrar) { managementpb.RegisterManagementServer(r, s) }

// ServerKey returns the server's public key.
func (s *Server) ServerKey(context.Context, *managementpb.ServerKeyRequest) (*managementpb.ServerKeyResponse, error) {
	return &managementpb.ServerKeyResponse{Key: s.pub[:], Version: ProtocolVersion, TimeUnixMs: time.Now().UnixMilli(),
		SignIn: s.svc.SignIn()}, nil
}

// Login opens a sealed LoginRequest and answers with a sealed LoginResponse.
func (s *Server) Login(ctx context.Context, in *managementpb.EncryptedMessage) (out *managementpb.EncryptedMessage, err error) {
	start, op := time.Now(), OpUnknown
	defer func() { s.observer().Login(op, status.Code(err), time.Since(start)) }()
	req := &managementpb.LoginRequest{}
	peer, err := s.open(in, req)
	if err != nil {
		return nil, err
	}
	op = OpLogin
	// Strangers without a valid setup key (or something shaped like a
	// sign-in token, on a server with a provider) are refused before their
	// nonce is remembered: only peers, setup-key holders and people
	// signing in use replay memory.
	if !s.svc.IsPeerKey(peer) {
		op = OpRegister
		check := s.svc.PrecheckRegistration(ctx, peer, req.GetSetupKey())
		if req.GetJwt() != "" {
			check = s.svc.PrecheckSignIn(ctx, req.GetJwt())
		}
		if check != nil {
			return nil, s.toStatus("login", peer, check)
		}
	}
	if err := s.fresh(ctx, "login", peer, req.GetSentUnixMs(), req.GetNonce()); err != nil {
		return nil, err
	}
	resp, err := s.svc.Login(ctx, peer, req)
	if err != nil {
		return nil, s.toStatus("login", peer, err)
	}
	return s.seal(peer, resp)
}

// Sync opens a sealed SyncRequest and streams sealed SyncResponses until
// the client goes away or the service cuts the stream.
func (s *Server) Sync(in *managementpb.EncryptedMessage, stream grpc.ServerStreamingServer[managementpb.EncryptedMessage]) error {
	req := &managementpb.SyncRequest{}
	peer, err := s.open(in, req)
	if err != nil {
		return err
	}
	if !s.svc.IsPeerKey(peer) {
		return status.Error(codes.PermissionDenied, "sync: peer is not registered; log in with a setup key")
	}
	if err := s.fresh(stream.Context(), "sync", peer, req.GetSentUnixMs(), req.GetNonce()); err != nil {
		return err
	}
	enc := newSyncEncoder(seal.Precompute(peer, s.key), req, s.zst)
	send := func(r *managementpb.SyncResponse) error {
		m, err := enc.encode(r)
		if status.Code(err) == codes.ResourceExhausted {
			s.log.Warn("sync message not sent: over the agent's limit", "peer", peer.Short(), "err", status.Convert(err).Message())
		}
		if err != nil {
			return err
		}
		m.WgPublicKey = s.pub[:]
		if err := stream.Send(m); err != nil {
			return err
		}
		s.observer().SyncSent(syncKind(r), len(m.GetBody()))
		return nil
	}
	err = s.svc.Sync(stream.Context(), peer, req, send)
	if err == nil || errors.Is(err, context.Canceled) && stream.Context().Err() != nil {
		return nil
	}
	return s.toStatus("sync", peer, err)
}

// open checks and opens an envelope into msg.
func (s *Server) open(in *managementpb.EncryptedMessage, msg proto.Message) (keys.Public, error) {
	return Open(in, s.key, msg)
}

// Open checks an envelope addressed to the holder of serverKey and decodes
// its body into msg; every failure is an InvalidArgument status. It is the
// decode path of Login and Sync (exported for the fuzz target and tools).
func Open(in *managementpb.EncryptedMessage, serverKey keys.Private, msg proto.Message) (keys.Public, error) {
	if in == nil {
		return keys.Public{}, status.Error(codes.InvalidArgument, "empty envelope")
	}
	if in.GetVersion() > ProtocolVersion {
		return keys.Public{}, status.Errorf(codes.InvalidArgument, "protocol version %d not supported (server speaks %d)", in.GetVersion(), ProtocolVersion)
	}
	peer, err := keys.PublicFromBytes(in.GetWgPublicKey())
	if err != nil || peer.IsZero() {
		return keys.Public{}, status.Error(codes.InvalidArgument, "envelope: invalid WireGuard public key")
	}
	// A low-order point makes the shared secret all zeros, which anyone
	// can compute: such an envelope would open for everybody's forgery.
	// No real WireGuard key is one.
	if _, err := curve25519.X25519(serverKey[:], peer[:]); err != nil {
		return keys.Public{}, status.Error(codes.InvalidArgument, "envelope: WireGuard public key is a low-order point")
	}
	if in.GetCompression() != managementpb.Compression_COMPRESSION_NONE {
		return keys.Public{}, status.Error(codes.InvalidArgument, "envelope: compressed requests are not accepted")
	}
	if len(in.GetBody()) > MaxRequestBody {
		return keys.Public{}, status.Errorf(codes.InvalidArgument, "envelope: body of %d bytes exceeds %d", len(in.GetBody()), MaxRequestBody)
	}
	plain, err := seal.Open(in.GetBody(), peer, serverKey)
	if err != nil {
		return keys.Public{}, status.Error(codes.InvalidArgument, "envelope does not open: wrong key, tampered or truncated")
	}
	if err := proto.Unmarshal(plain, msg); err != nil {
		return keys.Public{}, status.Error(codes.InvalidArgument, "envelope: body does not decode")
	}
	return peer, nil
}

func (s *Server) seal(peer keys.Public, msg proto.Message) (*managementpb.EncryptedMessage, error) {
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "marshal response: %v", err)
	}
	sealed, err := seal.Seal(b, peer, s.key)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "seal response: %v", err)
	}
	return &managementpb.EncryptedMessage{WgPublicKey: s.pub[:], Body: sealed, Version: ProtocolVersion}, nil
}

// toStatus maps a service error to a gRPC status; internal causes are
// logged, not sent.
func (s *Server) toStatus(op string, peer keys.Public, err error) error {
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, op+": canceled")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, op+": deadline exceeded")
	}
	kind := management.KindOf(err)
	if kind == management.KindInternal {
		s.log.Error(op+" failed", "peer", peer.Short(), "err", err)
		return status.Error(codes.Internal, op+": internal error")
	}
	st := status.New(Code(kind), err.Error())
	var me *management.Error
	if errors.As(err, &me) && me.RetryAfter > 0 {
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(me.RetryAfter)}); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// Code maps an error kind to a gRPC code.
func Code(k management.ErrorKind) codes.Code {
	switch k {
	case management.KindInvalid:
		return codes.InvalidArgument
	case management.KindNotFound:
		return codes.NotFound
	case management.KindConflict:
		return codes.AlreadyExists
	case management.KindUnauthenticated:
		return codes.Unauthenticated
	case management.KindPermission:
		return codes.PermissionDenied
	case management.KindPrecondition:
		return codes.FailedPrecondition
	case management.KindUnavailable:
		return codes.Unavailable
	case management.KindAborted:
		return codes.Aborted
	case management.KindExhausted:
		return codes.ResourceExhausted
	}
	return codes.Internal
}
