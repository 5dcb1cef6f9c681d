// Package mgmt is the agent's client of the management service: it fetches
// the server key, logs in and follows the Sync stream, sealing every request
// to the server key with the agent's WireGuard key and opening every answer.
// Sync checks serial continuity and returns ErrSerialGap when a message is
// missing, so the caller re-syncs in full.
//
// Sync declares CAPABILITY_ZSTD, CAPABILITY_DERIVED_PEER_RECORDS and
// CAPABILITY_COMPACT_PEERS: the server may compress its messages (decoded
// here under zstdbody.MaxDecoded, received up to MaxReceiveMessage), leave
// the peers' DNS records and derivable peer names out, which Sync rebuilds
// from the peer list (peerzone.go) before handing maps and deltas on, and
// leave RemotePeer.peer_id empty. Callers thus see what an older server
// sends, except for peer_id, which nothing in the agent reads.
//
// Imported by the agent (client/...). It depends only on the generated
// protocol, internal/seal, internal/zstdbody, internal/keys and grpc, never
// on server code. A Client is safe for concurrent use; Sync's callback runs
// on the calling goroutine.
package mgmt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/internal/zstdbody"
	"petrel/proto/managementpb"
)

// ProtocolVersion is the management protocol version this client speaks.
const ProtocolVersion = 1

// ErrSerialGap is returned by Sync when a message's serial does not follow
// the previous one (or a delta arrives before any full map): the caller
// must re-sync to get a full map.
var ErrSerialGap = errors.New("management sync: serial gap")

// ErrBadResponse is returned when a response envelope does not open or
// decode (wrong server key, tampering, a compressed body over the limit).
var ErrBadResponse = errors.New("management response does not open")

// MaxReceiveMessage is the gRPC receive limit of Sync: 16 MiB + 64 KiB, so
// the largest body internal/seal opens (seal.MaxMessage) fits with its
// envelope. Servers send agents that declare CAPABILITY_ZSTD nothing larger
// (and older agents, with gRPC's default 4 MiB, nothing over 4 MiB).
const MaxReceiveMessage = seal.MaxMessage + 64<<10

// capabilities is what Sync declares to the server.
var capabilities = []managementpb.Capability{
	managementpb.Capability_CAPABILITY_ZSTD,
	managementpb.Capability_CAPABILITY_DERIVED_PEER_RECORDS,
	managementpb.Capability_CAPABILITY_COMPACT_PEERS,
}

// Client talks to one management server.
type Client struct {
	conn  *grpc.ClientConn // nil when built with NewFromConn
	api   managementpb.ManagementClient
	clock serverClock
}

// Dial returns a client for target: "http://host:port" (plaintext),
// "https://host[:port]" (TLS with the system roots) or "host:port"
// (plaintext). opts are applied after the defaults, so a caller may pass
// its own transport credentials or a context dialer (control-plane
// sockets). Dial does not connect; the first call does. ctx is reserved for
// future use by blocking dialers.
func Dial(ctx context.Context, target string, opts ...grpc.DialOption) (*Client, error) {
	_ = ctx
	addr, creds, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	all := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, opts...)
	// passthrough: the dialer gets host:port and resolves the name itself
	// (the agent's dialer asks its management-domain cache first).
	conn, err := grpc.NewClient("passthrough:///"+addr, all...)
	if err != nil {
		return nil, fmt.Errorf("dial management %s: %w", target, err)
	}
	return &Client{conn: conn, api: managementpb.NewManagementClient(conn)}, nil
}

// NewFromConn returns a client over an existing connection (Close does not
// close it).
func NewFromConn(cc grpc.ClientConnInterface) *Client {
	return &Client{api: managementpb.NewManagementClient(cc)}
}

func parseTarget(target string) (string, credentials.TransportCredentials, error) {
	if !strings.Contains(target, "://") {
		if _, _, err := net.SplitHostPort(target); err != nil {
			return "", nil, fmt.Errorf("management target %q: want URL or host:port", target)
		}
		return target, insecure.NewCredentials(), nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", nil, fmt.Errorf("parse management URL: %w", err)
	}
	if u.Hostname() == "" {
		return "", nil, fmt.Errorf("management URL %q has no host", target)
	}
	switch u.Scheme {
	case "http", "grpc":
		port := u.Port()
		if port == "" {
			port = "80"
		}
		return net.JoinHostPort(u.Hostname(), port), insecure.NewCredentials(), nil
	case "https", "grpcs":
		port := u.Port()
		if port == "" {
			port = "443"
		}
		return net.JoinHostPort(u.Hostname(), port), credentials.NewTLS(&tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}), nil
	}
	return "", nil, fmt.Errorf("management URL %q: unsupported scheme %q", target, u.Scheme)
}

// Close closes the connection Dial opened.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// ServerKey fetches the server's public key (and learns the server's
// clock, on which requests are stamped: clock.go).
func (c *Client) ServerKey(ctx context.Context) (keys.Public, error) {
	sent := time.Now()
	resp, err := c.api.ServerKey(ctx, &managementpb.ServerKeyRequest{})
	if err != nil {
		return keys.Public{}, fmt.Errorf("get server key: %w", err)
	}
	k, err := keys.PublicFromBytes(resp.GetKey())
	if err != nil || k.IsZero() {
		return keys.Public{}, fmt.Errorf("get server key: %w", ErrBadResponse)
	}
	c.clock.learn(sent, time.Now(), resp.GetTimeUnixMs())
	return k, nil
}

// envelope seals msg from priv to the server key.
func envelope(msg proto.Message, server keys.Public, priv keys.Private) (*managementpb.EncryptedMessage, error) {
	b, err := proto.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("marshal request: %w", err)
	}
	body, err := seal.Seal(b, server, priv)
	if err != nil {
		return nil, fmt.Errorf("seal request: %w", err)
	}
	pub := priv.Public()
	return &managementpb.EncryptedMessage{WgPublicKey: pub[:], Body: body, Version: ProtocolVersion}, nil
}

// Login registers or re-authenticates the agent's key. The server key is
// fetched fresh, so a server that changed keys is followed. Errors from the
// server are gRPC statuses (see NeedsLogin).
func (c *Client) Login(ctx context.Context, priv keys.Private, req *managementpb.LoginRequest) (*managementpb.LoginResponse, error) {
	server, err := c.ServerKey(ctx)
	if err != nil {
		return nil, err
	}
	req = proto.CloneOf(req)
	req.SentUnixMs, req.Nonce = c.clock.stamp()
	env, err := envelope(req, server, priv)
	if err != nil {
		return nil, err
	}
	out, err := c.api.Login(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	plain, err := seal.Open(out.GetBody(), server, priv)
	if err != nil || out.GetCompression() != managementpb.Compression_COMPRESSION_NONE {
		return nil, fmt.Errorf("login: %w", ErrBadResponse)
	}
	resp := &managementpb.LoginResponse{}
	if err := proto.Unmarshal(plain, resp); err != nil {
		return nil, fmt.Errorf("login: decode response: %w", ErrBadResponse)
	}
	return resp, nil
}

// Sync opens the Sync stream and calls fn for every message, in order: a
// full map first, then deltas and config updates with consecutive serials.
// It returns when ctx ends, the stream fails, fn returns an error (returned
// as is), or a serial gap is seen (ErrSerialGap). It never returns nil.
// req's capabilities are replaced by what this package implements, except
// CAPABILITY_DNS_QUERY, which stays when req lists it: the caller's fn
// answers SyncResponse.dns_query (with ReportDNSQuery). req is not
// modified.
func (c *Client) Sync(ctx context.Context, priv keys.Private, req *managementpb.SyncRequest, fn func(*managementpb.SyncResponse) error) error {
	server, err := c.ServerKey(ctx)
	if err != nil {
		return err
	}
	if req == nil {
		req = &managementpb.SyncRequest{}
	}
	req = proto.CloneOf(req)
	caps := slices.Clip(capabilities)
	if slices.Contains(req.GetCapabilities(), managementpb.Capability_CAPABILITY_DNS_QUERY) {
		caps = append(caps, managementpb.Capability_CAPABILITY_DNS_QUERY)
	}
	req.Capabilities = caps
	req.SentUnixMs, req.Nonce = c.clock.stamp()
	env, err := envelope(req, server, priv)
	if err != nil {
		return err
	}
	dec, err := zstdbody.NewDecoder(zstdbody.MaxDecoded)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	defer dec.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.api.Sync(ctx, env, grpc.MaxCallRecvMsgSize(MaxReceiveMessage))
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	box := seal.Precompute(server, priv)
	var zone peerZone
	var last uint64
	haveFull := false
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("sync: %w", io.ErrUnexpectedEOF)
		}
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		resp, err := openSyncResponse(box, dec, m)
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		if resp.GetFull() != nil {
			haveFull, last = true, resp.GetSerial()
			restoreNames(resp.Full.Peers)
			zone.full(resp.Full)
		} else {
			if !haveFull {
				return fmt.Errorf("%w: update with serial %d before a full map", ErrSerialGap, resp.GetSerial())
			}
			if resp.GetSerial() != last+1 {
				return fmt.Errorf("%w: got serial %d after %d", ErrSerialGap, resp.GetSerial(), last)
			}
			last = resp.GetSerial()
			if resp.GetDelta() != nil {
				restoreNames(resp.Delta.UpsertPeers)
				zone.delta(resp.Delta)
			}
		}
		if err := fn(resp); err != nil {
			return err
		}
	}
}

// openSyncResponse opens, decompresses (under dec's limit) and decodes one
// sealed Sync message.
func openSyncResponse(box *seal.Precomputed, dec *zstdbody.Decoder, m *managementpb.EncryptedMessage) (*managementpb.SyncResponse, error) {
	plain, err := box.Open(m.GetBody())
	if err != nil {
		return nil, ErrBadResponse
	}
	switch c := m.GetCompression(); c {
	case managementpb.Compression_COMPRESSION_NONE:
	case managementpb.Compression_COMPRESSION_ZSTD:
		if plain, err = dec.Decode(plain); err != nil {
			return nil, fmt.Errorf("%w: decompress: %w", ErrBadResponse, err)
		}
	default:
		return nil, fmt.Errorf("%w: unknown compression %d", ErrBadResponse, c)
	}
	resp := &managementpb.SyncResponse{}
	if err := proto.Unmarshal(plain, resp); err != nil {
		return nil, fmt.Errorf("decode message: %w", ErrBadResponse)
	}
	return resp, nil
}

// NeedsLogin reports whether err means the agent's key is not (or no
// longer) registered or its setup key was refused: retrying will not help
// without user action.
func NeedsLogin(err error) bool {
	switch status.Code(err) { // status.Code looks through wrapping
	case codes.Unauthenticated, codes.PermissionDenied:
		return true
	}
	return false
}
