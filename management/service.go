// Package management is the account service of the Petrel control plane: the
// business rules for peers, setup keys, groups, policies, routes and DNS, the
// agent-facing Login and Sync operations, and the AdminAPI the REST layer
// calls.
//
// Account state lives in memory as copy-on-write *model.Account values, each
// paired with a netmap.Snapshot; the store is the source of truth for
// durability. A mutation takes the account's mutex, validates, commits to the
// store, swaps in the new account and snapshot, computes the affected peers'
// deltas with netmap.Deltas and hands them to those peers' Sync streams.
//
// Imported by management/grpcapi, management/restapi and cmd/petrel-server
// (never by the agent). All exported methods of Service are safe for
// concurrent use once Start has returned; reads (Snapshot, PeerStatus,
// AuthenticateToken, CheckPolicy) take no account lock.
package management

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"petrel/internal/keys"
	"petrel/management/model"
	"petrel/management/netmap"
	"petrel/management/store"
)

// Defaults for Config fields left zero.
const (
	DefaultRelayTokenTTL = 12 * time.Hour
	DefaultEphemeralTTL  = 10 * time.Minute
	DefaultMaxCoalesced  = 256
)

// overlayRange is where account networks are carved from.
var overlayRange = netip.MustParsePrefix("100.64.0.0/10")

// ServerInfo describes the control-plane endpoints advertised to agents.
type ServerInfo struct {
	// PublicURL is the URL agents use for management (and signal unless
	// SignalURL is set), e.g. "http://mgmt.lab.test:8080".
	PublicURL string
	// SignalURL defaults to PublicURL.
	SignalURL string
	// STUNURLs such as "stun:stun.example.net:3478".
	STUNURLs []string
	// RelayURLs are relay pool roots or instance URLs, "rel://relay.example.net:8080".
	RelayURLs []string
	// RelaySecret is kept for callers that mint tokens themselves; the
	// service mints through Config.MintRelayToken.
	RelaySecret []byte
	// RelayTokenTTL is the lifetime of relay tokens (default 12h); tokens are
	// re-issued through Sync config updates at 2/3 of it.
	RelayTokenTTL time.Duration
}

// Config configures a Service. Store is required.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Server ServerInfo
	// MintRelayToken returns a relay token bound to peer valid until exp
	// (petrel-server wires relay/auth.Mint with the shared secret). Nil: no
	// relay tokens are issued.
	MintRelayToken func(peer keys.Public, exp time.Time) string
	// EphemeralTTL is how long an ephemeral peer may stay disconnected
	// before it is removed (default 10 min).
	EphemeralTTL time.Duration
	// MaxCoalesced bounds how many updates may wait for a stream that does
	// not keep up (they are merged into one delta when it catches up); past
	// it the stream is cut and the agent resyncs in full (default 256).
	MaxCoalesced int
	// MaxMapBytes bounds the encoded size of a peer's full network map: a
	// mutation that would exceed it is refused (KindInvalid). Default
	// DefaultMaxMapBytes (15 MiB, what current agents can receive even
	// uncompressed); negative disables the check.
	MaxMapBytes int
	// JanitorInterval is how often ephemeral peers are checked (default
	// EphemeralTTL/4, at most 1 min).
	JanitorInterval time.Duration
	// LoginLimits bound logins per source and per peer (loginlimit.go).
	LoginLimits LoginLimits
	// Identity turns on sign-in through an OpenID provider; nil keeps
	// setup keys (and admin tokens) the only credentials.
	Identity *IdentityConfig
	// HA runs this service as one of several on a shared PostgreSQL store
	// (follow.go); nil: the only one (the store's single-writer lock).
	HA *HAConfig
}

type lifecycle int32

const (
	stateNew lifecycle = iota
	stateRunning
	stateStopped
)

// view is one immutable version of an account and its network-map
// snapshot. acct.Version is the stored version it reflects (advanced by
// every committed mutation, by any instance); Sync uses it as the serial
// of a full map.
type view struct {
	acct *model.Account
	snap *netmap.Snapshot
}

// account is the in-memory state of one account.
type account struct {
	id  string
	mu  sync.Mutex // serialises mutations and Sync registration
	cur atomic.Pointer[view]
}

func (a *account) view() *view { return a.cur.Load() }

// peerRef locates a peer by its WireGuard key.
type peerRef struct{ accountID, peerID string }

// Service is the management account service. Create it with New, then
// Start it; Stop ends it.
type Service struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	serverKey keys.Private
	started   time.Time

	state atomic.Int32 // lifecycle

	mu          sync.RWMutex // guards accounts, byKey and registering
	accounts    map[string]*account
	byKey       map[keys.Public]peerRef
	registering map[keys.Public]chan struct{} // keys with a registration in flight

	hub    *hub
	follow *follower // nil without Config.HA
	fence  fence     // fence.go

	stopOnce sync.Once
	stopCh   chan struct{}
	wg       sync.WaitGroup
	limits   loginLimiters // per-source and per-peer login limits (loginlimit.go)
	// signInTokens binds accepted sign-in tokens to one machine (signins.go).
	signInTokens signIns
	dnsTests     dnsTests // DNS tests waiting for their agents' answers (dnsquery.go)
}

var _ AdminAPI = (*Service)(nil)

// New validates cfg and returns a Service that is not started yet.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("new management service: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Server.SignalURL == "" {
		cfg.Server.SignalURL = cfg.Server.PublicURL
	}
	if cfg.Server.RelayTokenTTL <= 0 {
		cfg.Server.RelayTokenTTL = DefaultRelayTokenTTL
	}
	if cfg.EphemeralTTL <= 0 {
		cfg.EphemeralTTL = DefaultEphemeralTTL
	}
	if cfg.MaxCoalesced <= 0 {
		cfg.MaxCoalesced = DefaultMaxCoalesced
	}
	if cfg.MaxMapBytes == 0 {
		cfg.MaxMapBytes = DefaultMaxMapBytes
	}
	if cfg.JanitorInterval <= 0 {
		cfg.JanitorInterval = min(cfg.EphemeralTTL/4, time.Minute)
	}
	if cfg.HA != nil && cfg.JanitorInterval > cfg.EphemeralTTL/4 {
		// With HA, last-seen times are recorded once per interval: at
		// most a quarter of the TTL keeps connected peers' times fresh.
		cfg.JanitorInterval = cfg.EphemeralTTL / 4
	}
	cfg.JanitorInterval = max(cfg.JanitorInterval, time.Millisecond)
	s := &Service{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "management"),
		now:         cfg.Now,
		accounts:    map[string]*account{},
		byKey:       map[keys.Public]peerRef{},
		registering: map[keys.Public]chan struct{}{},
		stopCh:      make(chan struct{}),
		limits:      newLoginLimiters(cfg.LoginLimits, cfg.Now),
	}
	s.hub = newHub()
	if cfg.HA != nil {
		if cfg.HA.Feed == nil {
			return nil, errors.New("new management service: HA without a store feed")
		}
		s.follow = newFollower(*cfg.HA)
	}
	return s, nil
}

// Start loads the server key and every account from the store and starts
// the ephemeral-peer janitor. It does not block beyond loading.
func (s *Service) Start(ctx context.Context) error {
	if !s.state.CompareAndSwap(int32(stateNew), int32(stateRunning)) {
		return errors.New("start management service: already started or stopped")
	}
	if err := s.load(ctx); err != nil {
		s.state.Store(int32(stateStopped))
		s.stopOnce.Do(func() { close(s.stopCh) })
		return err
	}
	s.started = s.now()
	s.wg.Add(1)
	go s.janitor()
	if s.follow != nil {
		s.startFollowing()
	}
	return nil
}

// Stop closes every Sync stream and stops background work. It is
// idempotent; it does not close the store (the caller owns it).
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		s.state.Store(int32(stateStopped))
		close(s.stopCh)
		s.hub.closeAll(Errorf(KindUnavailable, "management service stopping"))
	})
	s.wg.Wait()
}

func (s *Service) running() error {
	if lifecycle(s.state.Load()) != stateRunning {
		return Errorf(KindUnavailable, "management service not running")
	}
	if s.fence.on.Load() {
		return errFenced
	}
	return nil
}

func (s *Service) load(ctx context.Context) error {
	k, err := s.cfg.Store.ServerKey(ctx)
	if err != nil {
		return fmt.Errorf("load server key: %w", err)
	}
	s.serverKey = k
	accts, err := s.cfg.Store.LoadAccounts(ctx)
	if err != nil {
		return fmt.Errorf("load accounts: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	repaired := 0
	for _, a := range accts {
		repaired += s.addAccountLocked(a)
	}
	if repaired > 0 {
		// Rewritten in the store with the peer's next change.
		s.log.Warn("repaired peers with unprintable or invalid names", "peers", repaired)
	}
	s.log.Info("loaded accounts", "accounts", len(accts))
	return nil
}

// addAccountLocked adds a loaded account and indexes its peers' keys; it
// returns how many peers it repaired. s.mu is held.
func (s *Service) addAccountLocked(a *model.Account) (repaired int) {
	fillMaps(a)
	for _, p := range a.Peers {
		if repairPeer(p) {
			repaired++
		}
	}
	st := &account{id: a.ID}
	st.cur.Store(&view{acct: a, snap: netmap.Build(a)})
	s.accounts[a.ID] = st
	for _, p := range a.Peers {
		if pk, err := keys.ParsePublic(p.PublicKey); err == nil {
			s.byKey[pk] = peerRef{a.ID, p.ID}
		}
	}
	return repaired
}

// ServerKey returns the management server's private key (valid after Start).
func (s *Service) ServerKey() keys.Private { return s.serverKey }

// Bootstrap creates the default account and an admin token when the store
// holds no account. It returns the plain token only when it created it.
func (s *Service) Bootstrap(ctx context.Context) (adminToken string, created bool, err error) {
	if err := s.running(); err != nil {
		return "", false, err
	}
	unlock, err := s.lockCreate(ctx)
	if err != nil {
		return "", false, err
	}
	defer unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.accounts) > 0 {
		return "", false, nil
	}
	a, token, err := s.newAccountLocked(ctx)
	if err != nil {
		return "", false, err
	}
	s.log.Info("created default account", "account", a.ID, "network", a.Network)
	return token, true, nil
}

// CreateAccount creates an additional account with its own /16 and returns
// its ID and a plain admin token.
func (s *Service) CreateAccount(ctx context.Context) (accountID, adminToken string, err error) {
	if err := s.running(); err != nil {
		return "", "", err
	}
	unlock, err := s.lockCreate(ctx)
	if err != nil {
		return "", "", err
	}
	defer unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	a, token, err := s.newAccountLocked(ctx)
	if err != nil {
		return "", "", err
	}
	return a.ID, token, nil
}

// lockCreate (HA) takes the cross-instance account-creation lock and
// catches up with accounts other instances created, so two instances
// starting on an empty database create one default account, and a new
// account's network is chosen from every account. Without HA it does
// nothing.
func (s *Service) lockCreate(ctx context.Context) (unlock func(), err error) {
	if s.follow == nil {
		return func() {}, nil
	}
	unlock, err = s.follow.cfg.Feed.LockCreate(ctx)
	if err != nil {
		return nil, storeError("create account", err)
	}
	if err := s.catchUpAllStrict(ctx); err != nil {
		unlock()
		return nil, storeError("create account: read the other instances' accounts", err)
	}
	return unlock, nil
}

// newAccountLocked creates an account; s.mu is held.
func (s *Service) newAccountLocked(ctx context.Context) (*model.Account, string, error) {
	network, ok := s.freeNetworkLocked()
	if !ok {
		return nil, "", Errorf(KindPrecondition, "no free /16 left in %s", overlayRange)
	}
	now := s.now().UTC()
	a := model.NewAccount(newID(), network, now)
	all := &model.Group{ID: newID(), Name: model.AllGroupName}
	a.Groups[all.ID] = all
	token := "ptok_" + randomString(32)
	tok := &model.AdminToken{ID: newID(), Name: "bootstrap", TokenHash: hashSecret(token), CreatedAt: now}
	a.AdminTokens[tok.ID] = tok
	err := s.cfg.Store.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		if err := tx.Put(a.ID, all); err != nil {
			return err
		}
		return tx.Put(a.ID, tok)
	})
	if err != nil {
		return nil, "", storeError("create account", err)
	}
	st := &account{id: a.ID}
	st.cur.Store(&view{acct: a, snap: netmap.Build(a)})
	s.accounts[a.ID] = st
	return a, token, nil
}

// freeNetworkLocked picks the first /16 of 100.64.0.0/10 that no account
// overlaps.
func (s *Service) freeNetworkLocked() (netip.Prefix, bool) {
	base := overlayRange.Addr().As4()
	for i := 0; i < 64; i++ {
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{base[0], base[1] + byte(i), 0, 0}), 16)
		free := true
		for _, st := range s.accounts {
			if st.view().acct.Network.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, true
		}
	}
	return netip.Prefix{}, false
}

// Accounts lists account IDs.
func (s *Service) Accounts() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.accounts))
	for id := range s.accounts {
		out = append(out, id)
	}
	return out
}

func (s *Service) account(id string) (*account, error) {
	s.mu.RLock()
	st := s.accounts[id]
	s.mu.RUnlock()
	if st == nil {
		return nil, Errorf(KindNotFound, "account %q not found", id)
	}
	return st, nil
}

// IsPeerKey reports whether pk belongs to a registered peer (signal admits
// only those).
func (s *Service) IsPeerKey(pk keys.Public) bool {
	_, ok := s.lookupKey(pk)
	return ok
}

func (s *Service) lookupKey(pk keys.Public) (peerRef, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.byKey[pk]
	return r, ok
}

// storeError maps store sentinels to typed errors.
func storeError(op string, err error) error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return err
	case errors.Is(err, store.ErrConflict):
		return &Error{Kind: KindConflict, Msg: op + ": already exists", Err: err}
	case errors.Is(err, store.ErrStale):
		return &Error{Kind: KindAborted, Msg: op + ": nothing was written, this server's copy of the account is out of date (another writer changed the store); restart petrel-server to reload it", Err: err}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Kind: KindNotFound, Msg: op + ": not found", Err: err}
	case errors.Is(err, store.ErrKeyInvalid):
		return &Error{Kind: KindUnauthenticated, Msg: "setup key not found"}
	case errors.Is(err, store.ErrKeyRevoked):
		return &Error{Kind: KindPermission, Msg: "setup key revoked"}
	case errors.Is(err, store.ErrKeyExpired):
		return &Error{Kind: KindPermission, Msg: "setup key expired"}
	case errors.Is(err, store.ErrKeyExhausted):
		return &Error{Kind: KindPermission, Msg: "setup key usage limit reached"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: KindUnavailable, Msg: op, Err: err}
	}
	return &Error{Kind: KindInternal, Msg: op, Err: err}
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a random 20-character lowercase ID.
func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return idEncoding.EncodeToString(b[:])
}

// randomString returns n random bytes encoded in lowercase base32.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return idEncoding.EncodeToString(b)
}

func fillMaps(a *model.Account) {
	if a.Peers == nil {
		a.Peers = map[string]*model.Peer{}
	}
	if a.Groups == nil {
		a.Groups = map[string]*model.Group{}
	}
	if a.Users == nil {
		a.Users = map[string]*model.User{}
	}
	if a.AccessTokens == nil {
		a.AccessTokens = map[string]*model.AccessToken{}
	}
	if a.SetupKeys == nil {
		a.SetupKeys = map[string]*model.SetupKey{}
	}
	if a.Policies == nil {
		a.Policies = map[string]*model.Policy{}
	}
	if a.Routes == nil {
		a.Routes = map[string]*model.Route{}
	}
	if a.NameserverGroups == nil {
		a.NameserverGroups = map[string]*model.NameserverGroup{}
	}
	if a.DNSZones == nil {
		a.DNSZones = map[string]*model.DNSZone{}
	}
	if a.AdminTokens == nil {
		a.AdminTokens = map[string]*model.AdminToken{}
	}
}
