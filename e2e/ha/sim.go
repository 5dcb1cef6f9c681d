package ha

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/protobuf/proto"

	"petrel/client/mgmt"
	"petrel/internal/backoff"
	"petrel/internal/keys"
	"petrel/management/netmap"
	mpb "petrel/proto/managementpb"
)

// agentsPerConn simulated agents share one gRPC connection (and one source
// address), like agents behind one NAT.
const agentsPerConn = 10

// agentConnectParams are the agent's bounds on gRPC's own reconnect
// backoff (client/engine's mgmtConnectParams).
var agentConnectParams = grpc.ConnectParams{
	Backoff:           grpcbackoff.Config{BaseDelay: 500 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
	MinConnectTimeout: 10 * time.Second,
}

// sims are the simulated agents: real client/mgmt Login and Sync over the
// proxy, deltas applied with netmap.Apply like the engine, and the
// engine's reconnect backoff.
type sims struct {
	conns  []*mgmt.Client
	agents []*sim
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// trial state: set while a kill is measured.
	trialOn  atomic.Bool
	trialSeq atomic.Int64 // the change an agent must hold to count as back
}

// sim is one simulated agent.
type sim struct {
	s    *sims
	cl   *mgmt.Client
	key  keys.Private
	host string

	mu        sync.Mutex
	nm        *mpb.NetworkMap // as applied
	seq       int             // rig change the applied map holds
	maxSerial uint64          // highest serial ever held, over all streams
	backwards []string        // full maps older than a serial held before
	brokeAt   time.Time       // trial: when its stream broke
	backAt    time.Time       // trial: when it held trialSeq on a new stream
	live      bool            // a stream has delivered its full map
	fulls     int
}

// meta is what the agent reports about itself, on Login and every Sync.
func (a *sim) meta() *mpb.PeerMeta {
	return &mpb.PeerMeta{Hostname: a.host, Os: "linux", AgentVersion: "ha-rig"}
}

// rigSeq is the rig change a map's rules show (-1: none).
func rigSeq(rules []*mpb.FirewallRule) int {
	seq := -1
	for _, r := range rules {
		for _, p := range r.GetPorts() {
			if n := int(p.GetStart()) - basePort; n >= 0 {
				seq = max(seq, n)
			}
		}
	}
	return seq
}

// newSims dials n/agentsPerConn connections to the proxy, each from its
// own loopback address (127.0.1.x), and registers n agents with setupKey.
func newSims(ctx context.Context, proxyAddr, setupKey string, n int) (*sims, error) {
	s := &sims{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for i := 0; i < (n+agentsPerConn-1)/agentsPerConn; i++ {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i))}}
		cl, err := mgmt.Dial(ctx, proxyAddr, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}), grpc.WithConnectParams(agentConnectParams))
		if err != nil {
			s.close()
			return nil, err
		}
		s.conns = append(s.conns, cl)
	}
	for i := range n {
		k, err := keys.NewPrivate()
		if err != nil {
			return nil, err
		}
		s.agents = append(s.agents, &sim{s: s, cl: s.conns[i/agentsPerConn], key: k, host: fmt.Sprintf("sim%03d", i)})
	}
	// Register 16 at a time.
	sem := make(chan struct{}, 16)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for _, a := range s.agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			lctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			_, err := a.cl.Login(lctx, a.key, &mpb.LoginRequest{SetupKey: setupKey, Hostname: a.host, DnsLabels: []string{a.host}, Meta: a.meta()})
			if err != nil {
				errc <- fmt.Errorf("register %s: %w", a.host, err)
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := errors.Join(func() (es []error) {
		for e := range errc {
			es = append(es, e)
		}
		return
	}()...); err != nil {
		s.close()
		return nil, err
	}
	for _, a := range s.agents {
		s.wg.Add(1)
		go a.run()
	}
	return s, nil
}

// run keeps a Sync stream open like the engine's sync loop: on any end it
// reconnects after a jittered backoff from 500 ms to 5 s, reset after a
// stream that lived 30 s.
func (a *sim) run() {
	defer a.s.wg.Done()
	bo := backoff.Backoff{Min: 500 * time.Millisecond, Max: 5 * time.Second}
	for a.s.ctx.Err() == nil {
		start := time.Now()
		_ = a.cl.Sync(a.s.ctx, a.key, &mpb.SyncRequest{Meta: a.meta()}, a.onMessage) // as the engine does
		a.ended()
		if time.Since(start) > 30*time.Second {
			bo.Reset()
		}
		select {
		case <-a.s.ctx.Done():
			return
		case <-time.After(bo.Next()):
		}
	}
}

func (a *sim) ended() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.live = false
	if a.s.trialOn.Load() && a.brokeAt.IsZero() && a.s.ctx.Err() == nil {
		a.brokeAt = time.Now()
	}
}

func (a *sim) onMessage(m *mpb.SyncResponse) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case m.GetFull() != nil:
		if m.GetSerial() < a.maxSerial {
			a.backwards = append(a.backwards, fmt.Sprintf("full map serial %d after %d", m.GetSerial(), a.maxSerial))
		}
		a.nm = m.GetFull()
		a.live = true
		a.fulls++
	case m.GetDelta() != nil:
		if a.nm == nil {
			return errors.New("delta before the full map")
		}
		a.nm = netmap.Apply(a.nm, m.GetDelta())
	}
	a.maxSerial = max(a.maxSerial, m.GetSerial())
	a.seq = rigSeq(a.nm.GetFirewallRules())
	if a.s.trialOn.Load() && !a.brokeAt.IsZero() && a.backAt.IsZero() && a.live && int64(a.seq) >= a.s.trialSeq.Load() {
		a.backAt = time.Now()
	}
	return nil
}

// holds reports whether the agent's applied map holds change seq.
func (a *sim) holds(seq int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.live && a.seq >= seq
}

// armTrial resets every agent's trial record; the kill follows.
func (s *sims) armTrial(seq int) {
	for _, a := range s.agents {
		a.mu.Lock()
		a.brokeAt, a.backAt = time.Time{}, time.Time{}
		a.mu.Unlock()
	}
	s.trialSeq.Store(int64(seq))
	s.trialOn.Store(true)
}

// trialResult is what a kill did to the agents.
type trialResult struct {
	affected int             // agents whose stream broke
	back     []time.Duration // kill to holding the trial's change again, per affected agent that came back
}

// collect ends the trial, measuring from killedAt.
func (s *sims) collect(killedAt time.Time) trialResult {
	s.trialOn.Store(false)
	var r trialResult
	for _, a := range s.agents {
		a.mu.Lock()
		if !a.brokeAt.IsZero() {
			r.affected++
			if !a.backAt.IsZero() {
				r.back = append(r.back, a.backAt.Sub(killedAt))
			}
		}
		a.mu.Unlock()
	}
	return r
}

// backwards lists every serial that went backwards, over all agents.
func (s *sims) backwards() []string {
	var out []string
	for _, a := range s.agents {
		a.mu.Lock()
		for _, b := range a.backwards {
			out = append(out, a.host+": "+b)
		}
		a.mu.Unlock()
	}
	return out
}

// verify stops the agents and checks each applied map against a fresh
// full map from a new stream; it returns the agents whose maps differ.
func (s *sims) verify(ctx context.Context) ([]string, error) {
	s.cancel()
	s.wg.Wait()
	var bad []string
	errDone := errors.New("done")
	for _, a := range s.agents {
		var fresh *mpb.NetworkMap
		err := a.cl.Sync(ctx, a.key, &mpb.SyncRequest{}, func(m *mpb.SyncResponse) error {
			fresh = m.GetFull()
			return errDone
		})
		if !errors.Is(err, errDone) {
			return bad, fmt.Errorf("fresh map for %s: %w", a.host, err)
		}
		a.mu.Lock()
		if !proto.Equal(a.nm, fresh) {
			bad = append(bad, fmt.Sprintf("%s: %v", a.host, netmap.Diff(a.nm, fresh)))
		}
		a.mu.Unlock()
	}
	return bad, nil
}

func (s *sims) close() {
	s.cancel()
	s.wg.Wait()
	for _, c := range s.conns {
		_ = c.Close()
	}
}
