package peer

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"

	"petrel/internal/backoff"
	"petrel/internal/keys"
	"petrel/proto/signalpb"
)

// Path is the path WireGuard uses for a peer.
type Path string

// Paths.
const (
	PathNone   Path = "none"
	PathRelay  Path = "relay"
	PathDirect Path = "p2p"
)

// Relay reasons.
const (
	ReasonICEPending = "ice-pending"
	ReasonICETimeout = "ice-timeout"
	ReasonICEFailed  = "ice-failed"
	ReasonForced     = "forced"
	ReasonLost       = "direct-path-lost"
)

// Signaler sends a message to the remote peer over signal.
type Signaler interface {
	Send(ctx context.Context, to keys.Public, msg *signalpb.PeerMessage) error
}

// Endpoints sets WireGuard's endpoint for a peer ("" removes it).
type Endpoints interface {
	SetEndpoint(pub keys.Public, endpoint string) error
}

// Config configures a Conn.
type Config struct {
	Local, Remote keys.Public
	Signal        Signaler
	Endpoints     Endpoints
	// RelayHome returns this agent's home relay instance URL ("" if none).
	RelayHome func() string
	// RelayEndpoint formats the WireGuard endpoint that sends to remote
	// through the given relay instance.
	RelayEndpoint func(remote keys.Public, instanceURL string) string
	// DirectEndpoint formats the WireGuard endpoint for a direct address.
	DirectEndpoint func(addr string) string
	// Mux is the shared-socket ICE mux (host and server-reflexive).
	Mux             ice.UniversalUDPMux
	STUN            []*stun.URI
	IncludeLoopback bool // tests and loopback demos only
	// Overlay is this agent's overlay network (for example 100.64.0.0/16).
	// Addresses in it are never ICE candidates, local or remote: a check
	// to a peer's overlay address succeeds through the tunnel itself, and
	// WireGuard pointed at it would send its packets into its own tunnel.
	Overlay    netip.Prefix
	ForceRelay bool
	WGPort     uint32
	Logger     *slog.Logger
	// ICE timeouts (defaults: 5 s disconnected, 15 s failed, 2 s keepalive).
	DisconnectedTimeout, FailedTimeout, KeepaliveInterval time.Duration
	// RetryMin/RetryMax bound the guard's backoff between ICE attempts while
	// relayed (defaults 2 s, 60 s).
	RetryMin, RetryMax time.Duration
}

// Status is a snapshot of the connection.
type Status struct {
	Path            Path
	RelayURL        string // remote's relay instance used
	LocalCandidate  string
	RemoteCandidate string
	Reason          string // why relayed (empty on p2p)
	ICEState        string
	LatencyMs       float64
	SignalOK        bool // the remote answered at least once
}

// Conn is the connection to one remote peer.
type Conn struct {
	cfg Config
	log *slog.Logger

	nat          natObserver // guarded by mu
	mu           sync.Mutex
	closed       bool
	session      *session
	remoteSess   uint64 // bound remote session id (0 = none)
	remoteRelay  string
	path         Path
	reason       string
	localCand    string
	remoteCand   string
	signalOK     bool
	retry        backoff.Backoff
	retryTimer   *time.Timer
	pendingCands []string // candidates for the bound session that arrived before it started
	wg           sync.WaitGroup
}

// session is one local ICE agent and its credentials.
type session struct {
	id      uint64
	agent   *ice.Agent
	ufrag   string
	pwd     string
	bound   bool
	started bool // ICE running (checks until Connected or Failed)
	done    chan struct{}

	offerTimer *time.Timer
}

// New returns a Conn; call Start.
func New(cfg Config) *Conn {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.DisconnectedTimeout == 0 {
		cfg.DisconnectedTimeout = 5 * time.Second
	}
	if cfg.FailedTimeout == 0 {
		cfg.FailedTimeout = 15 * time.Second
	}
	if cfg.KeepaliveInterval == 0 {
		cfg.KeepaliveInterval = 2 * time.Second
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 2 * time.Second
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 60 * time.Second
	}
	c := &Conn{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "peer", "peer", cfg.Remote.Short()),
		path:   PathNone,
		reason: ReasonICEPending,
		retry:  backoff.Backoff{Min: cfg.RetryMin, Max: cfg.RetryMax},
	}
	if cfg.ForceRelay {
		c.reason = ReasonForced
	}
	return c
}

func (c *Conn) controlling() bool {
	return strings.Compare(c.cfg.Local.String(), c.cfg.Remote.String()) > 0
}

// Start creates the first ICE session and sends an offer.
func (c *Conn) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.session != nil {
		return
	}
	if err := c.newSessionLocked(); err != nil {
		c.log.Warn("create ICE session", "err", err)
		c.scheduleRetryLocked()
		return
	}
	c.sendOfferLocked()
}

// sendOfferLocked sends an offer for the current session and keeps
// re-sending it with backoff until a remote session binds it: the remote
// may not know this peer yet (its map is behind) or signal may be
// reconnecting, and an offer is cheap.
func (c *Conn) sendOfferLocked() {
	s := c.session
	if s == nil {
		return
	}
	c.sendLocked(c.offerLocked(false))
	bo := &backoff.Backoff{Min: time.Second, Max: 10 * time.Second}
	var resend func()
	resend = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.session != s || s.bound {
			return
		}
		c.sendLocked(c.offerLocked(false))
		s.offerTimer = time.AfterFunc(bo.Next(), resend)
	}
	s.offerTimer = time.AfterFunc(bo.Next(), resend)
}

// Close tears down ICE and forgets the peer's endpoint. Idempotent.
func (c *Conn) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.retryTimer != nil {
		c.retryTimer.Stop()
	}
	s := c.session
	c.session = nil
	c.mu.Unlock()
	if s != nil {
		s.close()
	}
	c.wg.Wait()
}

// Status returns a snapshot.
func (c *Conn) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Path: c.path, RelayURL: c.remoteRelay, LocalCandidate: c.localCand,
		RemoteCandidate: c.remoteCand, SignalOK: c.signalOK}
	if c.path != PathDirect {
		st.Reason = c.reason
	}
	if s := c.session; s != nil && s.agent != nil && c.path == PathDirect {
		if ps, ok := s.agent.GetSelectedCandidatePairStats(); ok && ps.CurrentRoundTripTime > 0 {
			st.LatencyMs = ps.CurrentRoundTripTime * 1000
		}
	}
	return st
}

// keepIP reports whether ip may be an ICE candidate address (not inside
// the overlay network).
func (c *Conn) keepIP(ip net.IP) bool {
	if !c.cfg.Overlay.IsValid() {
		return true
	}
	a, ok := netip.AddrFromSlice(ip)
	return !ok || !c.cfg.Overlay.Contains(a.Unmap())
}

// keepCandidate reports whether a local candidate may be sent to the peer.
// The shared-socket mux gathers host candidates from every interface,
// including the overlay TUN, without the agent's IP filter.
func (c *Conn) keepCandidate(cand ice.Candidate) bool {
	ip := net.ParseIP(cand.Address())
	return ip == nil || c.keepIP(ip)
}

func randID() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := binary.BigEndian.Uint64(b[:])
	if id == 0 {
		id = 1
	}
	return id
}

func (c *Conn) newSessionLocked() error {
	s := &session{id: randID(), done: make(chan struct{})}
	if !c.cfg.ForceRelay {
		agent, err := c.newAgent()
		if err != nil {
			return err
		}
		s.agent = agent
		s.ufrag, s.pwd, err = agent.GetLocalUserCredentials()
		if err != nil {
			agent.Close()
			return fmt.Errorf("read ICE credentials: %w", err)
		}
		c.wireAgent(s)
	}
	c.session = s
	c.remoteSess = 0
	c.pendingCands = nil
	c.nat.reset()
	return nil
}

func (c *Conn) newAgent() (*ice.Agent, error) {
	dt, ft, ka := c.cfg.DisconnectedTimeout, c.cfg.FailedTimeout, c.cfg.KeepaliveInterval
	//lint:ignore SA1019 the config struct is still supported by pion/ice v4; moving to its option functions is a separate change with its own ICE tests
	cfg := &ice.AgentConfig{
		NetworkTypes:        []ice.NetworkType{ice.NetworkTypeUDP4},
		CandidateTypes:      []ice.CandidateType{ice.CandidateTypeHost, ice.CandidateTypeServerReflexive},
		Urls:                c.cfg.STUN,
		UDPMux:              c.cfg.Mux,
		UDPMuxSrflx:         c.cfg.Mux,
		DisconnectedTimeout: &dt,
		FailedTimeout:       &ft,
		KeepaliveInterval:   &ka,
		IncludeLoopback:     c.cfg.IncludeLoopback,
		MulticastDNSMode:    ice.MulticastDNSModeDisabled,
		IPFilter:            c.keepIP,
		RemoteIPFilter:      c.keepIP,
	}
	//lint:ignore SA1019 see the config above
	a, err := ice.NewAgent(cfg)
	if err != nil {
		return nil, fmt.Errorf("create ICE agent: %w", err)
	}
	return a, nil
}

func (s *session) close() {
	if s.offerTimer != nil {
		s.offerTimer.Stop()
	}
	if s.agent != nil {
		_ = s.agent.Close()
	}
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

// wireAgent installs the ICE callbacks of session s.
func (c *Conn) wireAgent(s *session) {
	_ = s.agent.OnCandidate(func(cand ice.Candidate) {
		if cand == nil || !c.keepCandidate(cand) {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.session != s || c.closed {
			return
		}
		c.nat.observe(cand, false)
		c.sendLocked(&signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Candidate{Candidate: &signalpb.Candidate{
			SessionId: s.id, Candidate: cand.Marshal()}}})
	})
	_ = s.agent.OnConnectionStateChange(func(st ice.ConnectionState) {
		c.onICEState(s, st)
	})
	_ = s.agent.OnSelectedCandidatePairChange(func(local, remote ice.Candidate) {
		c.onSelected(s, local, remote)
	})
}

func (c *Conn) offerLocked(answer bool) *signalpb.PeerMessage {
	s := c.session
	home := ""
	if c.cfg.RelayHome != nil {
		home = c.cfg.RelayHome()
	}
	if answer {
		return &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Answer{Answer: &signalpb.Answer{
			SessionId: s.id, IceUfrag: s.ufrag, IcePwd: s.pwd, RelayInstanceUrl: home, WgListenPort: c.cfg.WGPort}}}
	}
	return &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Offer{Offer: &signalpb.Offer{
		SessionId: s.id, IceUfrag: s.ufrag, IcePwd: s.pwd, RelayInstanceUrl: home, WgListenPort: c.cfg.WGPort}}}
}

// sendLocked sends asynchronously so that no lock is held across network I/O.
func (c *Conn) sendLocked(msg *signalpb.PeerMessage) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.cfg.Signal.Send(ctx, c.cfg.Remote, msg); err != nil {
			c.log.Debug("signal send", "err", err)
		}
	}()
}

// RemoteRelay returns the remote's home relay instance URL, if known.
func (c *Conn) RemoteRelay() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.remoteRelay
}
