package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	"petrel/management/netmap"
	mpb "petrel/proto/managementpb"
)

// errOwnGap is the agent's own serial check failing (mgmt.Client.Sync
// checks first, so it should never be seen).
var errOwnGap = errors.New("serial gap seen by the storm agent")

// errVerifyTimeout: no full map arrived to verify against in time.
var errVerifyTimeout = errors.New("no full map to verify against")

// fault is a deliberate defect an agent can be armed with, so the tests
// prove the checks fail when delivery breaks.
type fault int

const (
	faultNone  fault = iota
	faultApply       // skip applying the first delta that removes a peer
	faultWire        // lose one Sync message on the wire (after the full map)
)

// agent is one simulated agent: a key, a registration and at most one Sync
// stream on a connection shared with other agents. The storm driver calls
// login, start, stop and verify (never two at once for one agent); the
// stream's goroutine applies what arrives.
type agent struct {
	r     *run
	cl    *mgmt.Client
	key   keys.Private
	pub   string // base64, as in RemotePeer.public_key
	host  string
	team  int // infraTeam for infra
	fault fault

	peerID  string      // set by login
	busy    atomic.Bool // a churn operation owns the agent
	deleted atomic.Bool // deleted through REST: its stream ends for good
	armed   atomic.Bool // the fault fires once when set

	mu      sync.Mutex
	nm      *mpb.NetworkMap // the map as applied from the stream
	seq     int             // storm change the applied map holds
	cur     *stream
	verifyC chan bool // set while a verification waits for a full map
}

// stream is one Sync stream. wire and the serial state are owned by the
// stream's goroutine.
type stream struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	wire   wireStats
	last   uint64
	full   bool
}

func (a *agent) meta() *mpb.PeerMeta {
	return &mpb.PeerMeta{Hostname: a.host, Os: "linux", AgentVersion: "storm"}
}

// login registers the agent (setupKey set) or re-authenticates it.
func (a *agent) login(ctx context.Context, setupKey string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := a.cl.Login(ctx, a.key, &mpb.LoginRequest{SetupKey: setupKey, Hostname: a.host, DnsLabels: []string{a.host}, Meta: a.meta()})
	if err != nil {
		return err
	}
	if id := resp.GetPeerConfig().GetPeerId(); id != "" {
		a.peerID = id
	}
	return nil
}

// start opens a Sync stream unless one is open or the agent is deleted.
func (a *agent) start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur == nil && !a.deleted.Load() {
		a.cur = a.open()
	}
}

// open starts a stream; a.mu is held.
func (a *agent) open() *stream {
	ctx, cancel := context.WithCancel(a.r.ctx)
	s := &stream{cancel: cancel, done: make(chan struct{})}
	if a.fault == faultWire {
		s.wire.drop = &a.armed
	}
	s.ctx = context.WithValue(ctx, wireKey{}, &s.wire)
	go a.follow(s)
	return s
}

// stop closes the stream and waits for its goroutine.
func (a *agent) stop() {
	a.mu.Lock()
	s := a.cur
	a.cur = nil
	a.mu.Unlock()
	if s != nil {
		s.cancel()
		<-s.done
	}
}

// follow runs one stream. When it ends on its own (not stopped, agent not
// deleted) it counts why and resyncs like the real agent: a new stream,
// full map first.
func (a *agent) follow(s *stream) {
	defer close(s.done)
	defer s.cancel()
	err := a.cl.Sync(s.ctx, a.key, &mpb.SyncRequest{Meta: a.meta()}, func(m *mpb.SyncResponse) error { return a.onMessage(s, m) })
	if s.ctx.Err() != nil || a.deleted.Load() {
		return
	}
	m := &a.r.m
	switch {
	case errors.Is(err, mgmt.ErrSerialGap), errors.Is(err, errOwnGap):
		m.gaps.Add(1)
		a.r.log.Warn("serial gap", "agent", a.host, "err", err)
	case status.Code(err) == codes.Unavailable:
		m.cuts.Add(1)
		a.r.log.Debug("stream cut", "agent", a.host, "err", err)
	case mgmt.NeedsLogin(err):
		// Not registered (any more): a real agent stops and asks for a
		// login; so does this one (its verification then fails).
		m.streamErrs.Add(1)
		a.r.log.Warn("stream refused; the agent stops", "agent", a.host, "err", err)
		return
	default:
		m.streamErrs.Add(1)
		a.r.log.Warn("stream failed", "agent", a.host, "err", err)
	}
	select {
	case <-s.ctx.Done():
		return
	case <-time.After(200 * time.Millisecond):
	}
	a.mu.Lock()
	if a.cur == s && !a.deleted.Load() {
		a.cur = a.open()
	}
	a.mu.Unlock()
}

// onMessage checks the serial, applies the message and attributes the
// changes it carries to the mutations that caused them (latency).
func (a *agent) onMessage(s *stream, msg *mpb.SyncResponse) error {
	now := a.r.now()
	r, m := a.r, &a.r.m
	if full := msg.GetFull(); full != nil {
		m.fulls.Add(1)
		m.fullBytes.Add(int64(s.wire.last))
		r.noteFull(full, s.wire.last)
		seq := r.stormSeq(full.GetFirewallRules(), 0)
		a.mu.Lock()
		if a.verifyC != nil {
			ok := proto.Equal(a.nm, full)
			if !ok {
				r.log.Warn("applied map differs from the fresh full map", "agent", a.host, "diff", describe(netmap.Diff(a.nm, full)))
			}
			a.verifyC <- ok
			a.verifyC = nil
		}
		a.nm, a.seq = full, seq
		a.mu.Unlock()
		s.full, s.last = true, msg.GetSerial()
		return nil
	}
	if !s.full || msg.GetSerial() != s.last+1 {
		return fmt.Errorf("%w: serial %d after %d", errOwnGap, msg.GetSerial(), s.last)
	}
	s.last = msg.GetSerial()
	d := msg.GetDelta()
	if d == nil { // a server-config update
		return nil
	}
	m.deltas.Add(1)
	m.deltaBytes.Add(int64(s.wire.last))
	if a.fault == faultApply && len(d.GetRemovedPeers()) > 0 && a.armed.CompareAndSwap(true, false) {
		r.log.Info("fault: dropping a delta", "agent", a.host, "removed_peers", len(d.GetRemovedPeers()))
		return nil
	}
	a.mu.Lock()
	old, oldSeq := a.nm, a.seq
	a.mu.Unlock()
	seq := r.attribute(now, old, oldSeq, d)
	next := netmap.Apply(old, d)
	a.mu.Lock()
	a.nm, a.seq = next, seq
	a.mu.Unlock()
	return nil
}

// verify re-syncs the agent and reports whether the fresh full map equals
// the map it had applied. The storm must be quiet (no mutation in flight,
// every earlier change delivered) for the answer to mean anything.
func (a *agent) verify(timeout time.Duration) (bool, error) {
	c := make(chan bool, 1)
	a.mu.Lock()
	a.verifyC = c
	a.mu.Unlock()
	a.stop()
	a.start()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ok := <-c:
		return ok, nil
	case <-t.C:
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verifyC == nil { // answered just now
		return <-c, nil
	}
	a.verifyC = nil
	return false, errVerifyTimeout
}

// synced reports whether the agent holds a map with storm change seq or
// later.
func (a *agent) synced(seq int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nm != nil && a.seq >= seq
}

// hasPeer reports whether m holds the peer with public key pub.
func hasPeer(m *mpb.NetworkMap, pub string) bool {
	return slices.ContainsFunc(m.GetPeers(), func(p *mpb.RemotePeer) bool { return p.GetPublicKey() == pub })
}

// describe summarises a delta for a log line.
func describe(d *mpb.NetworkMapDelta) string {
	if d == nil {
		return "none"
	}
	return fmt.Sprintf("upsert_peers=%d removed_peers=%d set_deltas=%d replaced_sets=%d removed_sets=%d rules_changed=%v routes_changed=%v dns=%v dns_delta=%v self=%v",
		len(d.GetUpsertPeers()), len(d.GetRemovedPeers()), len(d.GetPeerSetDeltas()), len(d.GetReplacedPeerSets()), len(d.GetRemovedPeerSets()),
		d.GetFirewallRulesChanged(), d.GetRoutesChanged(), d.GetDns() != nil, d.GetDnsDelta() != nil, d.GetSelf() != nil)
}

// wireKey is the context key under which a stream's wireStats travel to
// the interceptor.
type wireKey struct{}

// wireStats is what the interceptor saw on one stream; only the stream's
// goroutine touches it (RecvMsg and the Sync callback run on it).
type wireStats struct {
	n    int          // messages received
	last int          // wire size of the last message (sealed envelope)
	drop *atomic.Bool // faultWire: when set, lose the next message after the first
}

// meterStreams is a stream interceptor that records the size of every
// received message on streams carrying wireStats (and loses one when the
// wire fault is armed).
func meterStreams(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	ws, _ := ctx.Value(wireKey{}).(*wireStats)
	if ws == nil {
		return cs, nil
	}
	return &meteredStream{ClientStream: cs, ws: ws}, nil
}

type meteredStream struct {
	grpc.ClientStream
	ws *wireStats
}

func (s *meteredStream) RecvMsg(m any) error {
	for {
		if err := s.ClientStream.RecvMsg(m); err != nil {
			return err
		}
		s.ws.n++
		if pm, ok := m.(proto.Message); ok {
			s.ws.last = proto.Size(pm)
		}
		if s.ws.n > 1 && s.ws.drop != nil && s.ws.drop.CompareAndSwap(true, false) {
			continue // fault: this message is lost
		}
		return nil
	}
}
