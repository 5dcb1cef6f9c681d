package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"petrel/client/mgmt"
	"petrel/internal/keys"
	mpb "petrel/proto/managementpb"
)

// config is the storm's shape, parsed once from flags (or set by tests).
type config struct {
	Agents      int           `json:"agents"`
	Duration    time.Duration `json:"duration_ns"`     // storm time, checkpoint pauses excluded
	Churn       float64       `json:"churn_per_min"`   // fraction of the agents churned per minute
	Replace     float64       `json:"replace"`         // fraction of churn events that delete and register
	PolicyEvery time.Duration `json:"policy_every_ns"` // interval between policy changes
	CheckEvery  time.Duration `json:"check_every_ns"`  // 0: verify only at the start and the end
	Mesh        bool          `json:"mesh"`            // everyone sees everyone (else teams + infra)
	TeamSize    int           `json:"team_size"`
	Infra       float64       `json:"infra"`      // fraction of the agents in the infra group
	Conns       int           `json:"conns"`      // shared gRPC connections (0: automatic)
	OneSource   bool          `json:"one_source"` // all connections from 127.0.0.1
	Offline     time.Duration `json:"offline_ns"`
	Setup       int           `json:"setup_workers"`
	Wait        time.Duration `json:"wait_ns"` // deadline of a barrier or a verification
	Seed        uint64        `json:"seed"`

	fault fault // armed on the first infra agent when the storm starts (tests)
}

// Connection limits of the server (server.DefaultMaxConnsPerSource and its
// gRPC stream limit): the pool must stay under both.
const (
	serverConnsPerSource = 64
	serverStreamsPerConn = 128
	maxPoolConns         = serverConnsPerSource - maxRESTConns - 8 // 48
)

func (c config) validate() (config, error) {
	var errs []error
	if c.Agents < 2 {
		errs = append(errs, errors.New("-agents: at least 2"))
	}
	if c.Duration <= 0 || c.PolicyEvery <= 0 {
		errs = append(errs, errors.New("-duration and -policy-every must be positive"))
	}
	if c.Churn < 0 || c.Replace < 0 || c.Replace > 1 {
		errs = append(errs, errors.New("-churn must be >= 0 and -replace within [0, 1]"))
	}
	if c.TeamSize < 1 || c.Infra < 0 || c.Infra >= 1 {
		errs = append(errs, errors.New("-team-size must be >= 1 and -infra within [0, 1)"))
	}
	if c.Conns <= 0 {
		c.Conns = max(1, (c.Agents+99)/100)
		if c.OneSource {
			c.Conns = min(c.Conns, maxPoolConns)
		}
	}
	if c.OneSource && c.Conns > maxPoolConns {
		errs = append(errs, fmt.Errorf("-conns: at most %d from one source (the server allows %d connections per source address)", maxPoolConns, serverConnsPerSource))
	}
	if c.Agents > c.Conns*(serverStreamsPerConn-8) {
		errs = append(errs, fmt.Errorf("-agents %d need more than %d connections (%d streams each)", c.Agents, c.Conns, serverStreamsPerConn))
	}
	if c.Setup <= 0 {
		c.Setup = 16
	}
	if c.Wait <= 0 {
		c.Wait = 2 * time.Minute
	}
	return c, errors.Join(errs...)
}

// infraCount and teamCount derive the topology's shape from the config.
func (c config) infraCount() int {
	if c.Mesh {
		return 0
	}
	return max(1, int(float64(c.Agents)*c.Infra+0.5))
}

func (c config) teamCount() int { return max(1, (c.Agents-c.infraCount())/c.TeamSize) }

// initialTeam is the team of agent i at setup.
func (c config) initialTeam(i int) int {
	n := c.infraCount()
	if i < n {
		return infraTeam
	}
	return (i - n) % c.teamCount()
}

// mutRec is one mutation for latency attribution: when the call started
// and returned (ns since the run's start; end 0 while in flight) and how
// many agents it reached.
type mutRec struct {
	barrier bool
	start   int64
	end     atomic.Int64
	reached atomic.Int64
}

// kinds of mutations whose deliveries are timed.
const (
	kindPolicy = iota
	kindDelete
	kindRegister
	kindBarrier // a policy change at a checkpoint, with the storm paused
	nKinds
)

var kindNames = [nKinds]string{"policy change (REST PUT)", "peer deleted (REST DELETE)", "peer registered (Login)", "policy change, storm paused"}

// metrics are the run's counters; agents update them concurrently.
type metrics struct {
	gaps, cuts, streamErrs                  atomic.Int64
	fulls, deltas, fullBytes, deltaBytes    atomic.Int64
	coalesced, early                        atomic.Int64
	policyChanges, barriers, deleted        atomic.Int64
	registered, reconnected                 atomic.Int64
	restErrors, loginErrors, skippedChurn   atomic.Int64
	lat                                     [nKinds]hist
	call                                    [nKinds + 1]hist // mutation call durations; [nKinds]: re-login
	latAll, fromStart                       hist
	largestMu                               sync.Mutex
	largestPeers, largestWire, largestProto int // guarded by largestMu
}

// run is one storm: the server handle, the shared connections, the agents
// and the mutation records. Agents index it concurrently; the slice of
// agents is replaced slot by slot under mu.
type run struct {
	cfg  config
	log  *slog.Logger
	srv  serverHandle
	api  *adminClient
	pool []*mgmt.Client
	topo *topology
	t0   time.Time

	ctx    context.Context // ends the agents' streams
	cancel context.CancelFunc

	mu     sync.Mutex
	agents []*agent
	rng    *rand.Rand // guarded by mu
	hosts  atomic.Int64

	deletions     sync.Map // public key → *mutRec
	registrations sync.Map // public key → *mutRec
	policies      sync.Map // storm seq → *mutRec
	polMu         sync.Mutex
	polSeq        int // guarded by polMu

	storming atomic.Bool
	ops      sync.WaitGroup // churn and policy operations in flight
	m        metrics

	fatalMu sync.Mutex
	fatal   error // guarded by fatalMu
}

func newRun(ctx context.Context, cfg config, srv serverHandle, log *slog.Logger) *run {
	r := &run{cfg: cfg, log: log, srv: srv, t0: time.Now(), rng: rand.New(rand.NewPCG(cfg.Seed, 0x5702))}
	r.ctx, r.cancel = context.WithCancel(ctx)
	r.api = newAdminClient(srv.Addr(), srv.Token())
	return r
}

func (r *run) now() int64 { return int64(time.Since(r.t0)) + 1 } // never 0

// dial opens the shared gRPC connections through client/mgmt, so the
// agents negotiate whatever the real agent negotiates. Each connection
// comes from its own loopback address (127.0.1.1, 127.0.1.2, ...), like
// agents behind different NATs: the server's per-source limits (64
// connections, 20 logins a second) then apply to ~100 agents each, not to
// all of them at once.
func (r *run) dial() error {
	for i := range r.cfg.Conns {
		opts := []grpc.DialOption{grpc.WithStreamInterceptor(meterStreams)}
		if !r.cfg.OneSource {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/250), byte(1+i%250))}}
			opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", addr)
			}))
		}
		c, err := mgmt.Dial(r.ctx, r.srv.Addr(), opts...)
		if err != nil {
			return err
		}
		r.pool = append(r.pool, c)
	}
	return nil
}

// close stops every stream, then the connections.
func (r *run) close() {
	r.ops.Wait()
	r.cancel()
	r.mu.Lock()
	all := append([]*agent(nil), r.agents...)
	r.mu.Unlock()
	for _, a := range all {
		if a != nil {
			a.stop()
		}
	}
	for _, c := range r.pool {
		_ = c.Close()
	}
	r.api.close()
}

// newAgent creates an agent with a fresh key on the next pool connection.
func (r *run) newAgent(team int) (*agent, error) {
	k, err := keys.NewPrivate()
	if err != nil {
		return nil, err
	}
	n := r.hosts.Add(1)
	return &agent{r: r, cl: r.pool[int(n)%len(r.pool)], key: k, pub: k.Public().String(), host: fmt.Sprintf("s%06d", n), team: team}, nil
}

// register logs a new agent in with its team's setup key (retrying
// transient failures) and records the registration for latency.
func (r *run) register(ctx context.Context, a *agent, timed bool) error {
	var rec *mutRec
	if timed {
		rec = &mutRec{start: r.now()}
		r.registrations.Store(a.pub, rec)
	}
	var err error
	for try := range 5 {
		if err = a.login(ctx, r.topo.keyFor(a.team)); err == nil || ctx.Err() != nil {
			break
		}
		r.m.loginErrors.Add(1)
		r.log.Warn("registration failed", "agent", a.host, "try", try+1, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second << try):
		}
	}
	if rec != nil {
		rec.end.Store(r.now())
		r.m.call[kindRegister].add(time.Duration(rec.end.Load() - rec.start))
	}
	if err != nil {
		return fmt.Errorf("register %s: %w", a.host, err)
	}
	return nil
}

// stormSeq extracts the storm change a map's firewall rules belong to
// (from the storm policy's port); dflt when there is no storm rule.
func (r *run) stormSeq(rules []*mpb.FirewallRule, dflt int) int {
	seq := -1
	for _, fr := range rules {
		if fr.GetPolicyId() != r.topo.stormID {
			continue
		}
		for _, p := range fr.GetPorts() {
			seq = max(seq, int(p.GetStart())-stormBasePort)
		}
	}
	if seq < 0 {
		return dflt
	}
	return seq
}

// attribute times the deliveries a delta carries and returns the storm
// change the agent holds after it.
func (r *run) attribute(now int64, old *mpb.NetworkMap, oldSeq int, d *mpb.NetworkMapDelta) int {
	for _, k := range d.GetRemovedPeers() {
		if v, ok := r.deletions.Load(k); ok {
			r.observe(kindDelete, v.(*mutRec), now)
		}
	}
	if !d.GetFirewallRulesChanged() {
		// A peer that appears with no rule change is a registration (one
		// that appears with new rules came into view by a policy change).
		for _, p := range d.GetUpsertPeers() {
			if v, ok := r.registrations.Load(p.GetPublicKey()); ok && !hasPeer(old, p.GetPublicKey()) {
				r.observe(kindRegister, v.(*mutRec), now)
			}
		}
		return oldSeq
	}
	seq := r.stormSeq(d.GetFirewallRules(), oldSeq)
	if seq > oldSeq {
		if v, ok := r.policies.Load(seq); ok {
			r.observe(kindPolicy, v.(*mutRec), now)
		}
		r.m.coalesced.Add(int64(seq - oldSeq - 1))
	}
	return seq
}

// observe records one delivery of rec at now. A delivery that arrives
// before the mutation's call returned counts as 0 (and as early).
func (r *run) observe(kind int, rec *mutRec, now int64) {
	lat := time.Duration(0)
	if end := rec.end.Load(); end == 0 || end > now {
		r.m.early.Add(1)
	} else {
		lat = time.Duration(now - end)
	}
	if kind == kindPolicy && rec.barrier {
		kind = kindBarrier
	}
	r.m.lat[kind].add(lat)
	if kind != kindBarrier {
		r.m.latAll.add(lat)
		r.m.fromStart.add(time.Duration(now - rec.start))
	}
	rec.reached.Add(1)
}

// noteFull keeps the largest full map seen (by peers, then wire size).
func (r *run) noteFull(full *mpb.NetworkMap, wire int) {
	n := len(full.GetPeers())
	r.m.largestMu.Lock()
	defer r.m.largestMu.Unlock()
	if n > r.m.largestPeers || n == r.m.largestPeers && wire > r.m.largestWire {
		r.m.largestPeers, r.m.largestWire, r.m.largestProto = n, wire, proto.Size(full)
	}
}

// snapshotAgents returns the live agents.
func (r *run) snapshotAgents() []*agent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*agent(nil), r.agents...)
}

// forEach runs fn for every live agent with n workers; it returns the
// first error.
func (r *run) forEach(n int, fn func(a *agent) error) error {
	all := r.snapshotAgents()
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(all) {
					return
				}
				if err := fn(all[i]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// setup creates the topology and registers and connects every agent.
func (r *run) setup(ctx context.Context) error {
	cfg := r.cfg
	topo, err := setupTopology(ctx, r.api, cfg.Mesh, cfg.teamCount())
	if err != nil {
		return fmt.Errorf("set up the account: %w", err)
	}
	r.topo = topo
	r.policies.Store(0, &mutRec{})
	r.agents = make([]*agent, cfg.Agents)
	for i := range r.agents {
		a, err := r.newAgent(cfg.initialTeam(i))
		if err != nil {
			return err
		}
		r.agents[i] = a
	}
	if cfg.fault != faultNone {
		r.agents[0].fault = cfg.fault // agent 0 is infra: every deletion reaches it
	}
	// Register everyone first, then open the streams: registrations into
	// an account whose agents are connected would fan deltas out to the
	// infra agents' growing maps, which only slows the setup down.
	var done atomic.Int64
	err = r.forEach(cfg.Setup, func(a *agent) error {
		if err := r.register(ctx, a, false); err != nil {
			return err
		}
		if n := done.Add(1); n%1000 == 0 {
			r.log.Info("registered", "agents", n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_ = r.forEach(cfg.Setup, func(a *agent) error { a.start(); return nil })
	deadline := time.Now().Add(cfg.Wait)
	for {
		missing := 0
		for _, a := range r.snapshotAgents() {
			if !a.synced(0) {
				missing++
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d agents have no map after %v", missing, cfg.Wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// changePolicy replaces the storm policy (REST PUT) with the next change
// and returns its sequence number. Changes are serialised so their
// sequence numbers reach the server in order.
func (r *run) changePolicy(ctx context.Context, barrier bool) (int, error) {
	r.polMu.Lock()
	defer r.polMu.Unlock()
	seq := r.polSeq + 1
	rec := &mutRec{barrier: barrier, start: r.now()}
	r.policies.Store(seq, rec)
	err := r.api.do(ctx, "PUT", "/api/policies/"+r.topo.stormID, r.topo.stormPolicy(seq), nil)
	rec.end.Store(r.now())
	kind := kindPolicy
	if barrier {
		kind = kindBarrier
	}
	r.m.call[kind].add(time.Duration(rec.end.Load() - rec.start))
	// A failed request may still have been carried out (a timeout): the
	// next change takes the next number either way.
	r.polSeq = seq
	if err != nil {
		r.m.restErrors.Add(1)
		return 0, fmt.Errorf("policy change %d: %w", seq, err)
	}
	return seq, nil
}

// describeTopology is one line for the report.
func (r *run) describeTopology() string {
	if r.cfg.Mesh {
		return "mesh: every peer sees every peer (All <-> All)"
	}
	var b strings.Builder
	b.WriteString("teams: ")
	b.WriteString(strconv.Itoa(r.cfg.infraCount()))
	b.WriteString(" infra agents (see every peer), ")
	fmt.Fprintf(&b, "%d teams of ~%d (each sees its team and infra; one pair of teams joined by the storm policy)",
		r.cfg.teamCount(), (r.cfg.Agents-r.cfg.infraCount())/r.cfg.teamCount())
	return b.String()
}
