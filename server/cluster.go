package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/replay"
	"petrel/proto/signalpb"
	"petrel/signal"
)

// Cross-instance signal for --ha (docs/signal.md "Across instances"): every
// instance records in PostgreSQL which peers' signal streams it holds and
// sends a heartbeat; an envelope for a peer not registered locally is
// POSTed to the instance holding it, authenticated with an HMAC keyed from
// the server key all instances share (it lives in the store).

// ForwardPath is the HTTP/1.1 endpoint on the one port that receives
// envelopes forwarded by other instances.
const ForwardPath = "/internal/signal/forward"

// Defaults of the cluster timers (tests shorten them through Config).
const (
	DefaultClusterHeartbeat = 3 * time.Second
	DefaultClusterTTL       = 15 * time.Second
)

const (
	headerTime  = "X-Petrel-Cluster-Time"
	headerMAC   = "X-Petrel-Cluster-Mac"
	headerNonce = "X-Petrel-Cluster-Nonce" // hex of replay.NonceLen random bytes
	headerTo    = "X-Petrel-Cluster-To"    // the destination instance's ID
	// clockSkew bounds how old (or early) a forward's timestamp may be;
	// nonces are remembered that long, so a forward is accepted once.
	clockSkew = 60 * time.Second
	// replayMax bounds the nonces remembered (more forwards within the
	// window are answered 503, so NOT_CONNECTED).
	replayMax = 1 << 20
	// defaultBreak is how long forwards to an instance that could not be
	// reached are answered NOT_CONNECTED without trying it.
	defaultBreak = 5 * time.Second
	// refusalLogEvery bounds the warnings about refused forwards.
	refusalLogEvery = 10 * time.Second
	// forwardMax bounds a forwarded request body (an envelope of the
	// largest body plus keys and framing).
	forwardMax = signal.DefaultMaxBody + 1024
)

// presenceStore is the part of the shared PostgreSQL store the cluster
// uses (management/store/postgres/presence.go).
type presenceStore interface {
	SignalHeartbeat(ctx context.Context, instance, url string) error
	SignalInstanceGone(ctx context.Context, instance string) error
	SignalEpoch(ctx context.Context) (int64, error)
	SignalOpened(ctx context.Context, peer keys.Public, instance string, epoch int64) error
	SignalReopened(ctx context.Context, peer keys.Public, instance string, epoch int64, ttl time.Duration) (bool, error)
	SignalClosed(ctx context.Context, peer keys.Public, instance string, epoch int64) error
	SignalLookup(ctx context.Context, peer keys.Public, ttl time.Duration) (instance, url string, ok bool, err error)
}

// clusterStats count forwarding outcomes (tests and logs).
type clusterStats struct {
	misses   atomic.Uint64 // no live presence row: answered NOT_CONNECTED without a request
	failures atomic.Uint64 // the owner could not be reached or refused
	refused  atomic.Uint64 // incoming forwards refused for a bad or missing MAC
	replayed atomic.Uint64 // incoming forwards refused as replays (valid MAC)
	broken   atomic.Uint64 // answered NOT_CONNECTED by an open breaker, without a request
	reopened atomic.Uint64 // presence rows written by a retry
	closed   atomic.Uint64 // Closed calls done (tests wait for them)
}

// localReg is one session registered here (Opened until Closed).
type localReg struct {
	peer    keys.Public
	epoch   int64 // of the presence row written; 0 if none yet
	pending bool  // the presence write failed: retried on each heartbeat
}

// cluster implements signal.Cluster over the store and HTTP.
type cluster struct {
	log    *slog.Logger
	st     presenceStore
	id     string // random per start
	url    string // where the others reach this instance
	key    []byte // HMAC key
	beat   time.Duration
	ttl    time.Duration
	client *http.Client
	sig    *signal.Server // set after the signal server exists
	stats  clusterStats

	// crashed makes the instance stop writing presence, as if killed
	// (tests of a dead instance; never set otherwise).
	crashed atomic.Bool
	// failPresence makes that many presence writes of Opened fail (tests
	// of a database blip; never set otherwise).
	failPresence atomic.Int32
	// breakFor is how long an unreachable instance is skipped (ns).
	breakFor atomic.Int64

	guard *replay.Guard // nonces of accepted forwards

	mu      sync.Mutex
	regs    map[int64]*localReg   // by the token Opened returned
	latest  map[keys.Public]int64 // the newest token of each peer
	lastTok int64                 // tokens issued
	broken  map[string]time.Time  // instance → until when it is skipped

	logMu      sync.Mutex
	logEvery   time.Duration // refusalLogEvery (tests change it)
	lastRefLog time.Time     // last warning about a refused forward
	refSilent  int           // refusals not logged since

	stopc    chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

var _ signal.Cluster = (*cluster)(nil)

// clusterKey derives the forwarding MAC key from the server's private key,
// which every instance on the shared store loads from it.
func clusterKey(serverKey keys.Private) []byte {
	m := hmac.New(sha256.New, serverKey[:])
	m.Write([]byte("petrel signal cluster forward v1"))
	return m.Sum(nil)
}

// newCluster prepares the cluster; serverName, if set, is the name the
// other instances' TLS certificates are checked against (the shared public
// name, whatever host the cluster URL names).
func newCluster(st presenceStore, serverKey keys.Private, url, serverName string, beat, ttl time.Duration, log *slog.Logger) (*cluster, error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("cluster instance id: %w", err)
	}
	// HTTP/1.1 only: the one port hands HTTP/2 to gRPC.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		TLSClientConfig:     &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	c := &cluster{
		log: log.With("component", "signal-cluster"), st: st, id: hex.EncodeToString(id[:]), url: url,
		key: clusterKey(serverKey), beat: beat, ttl: ttl,
		client: &http.Client{Transport: tr, Timeout: signal.ForwardTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		stopc: make(chan struct{}),
		guard: replay.New(clockSkew, replayMax, nil), logEvery: refusalLogEvery,
		regs: map[int64]*localReg{}, latest: map[keys.Public]int64{}, broken: map[string]time.Time{},
	}
	c.breakFor.Store(int64(defaultBreak))
	return c, nil
}

// start sends the first heartbeat (failing if the store cannot take it)
// and keeps sending them in the background.
func (c *cluster) start(ctx context.Context) error {
	if err := c.st.SignalHeartbeat(ctx, c.id, c.url); err != nil {
		return err
	}
	c.wg.Add(1)
	go c.heartbeats()
	c.log.Info("cross-instance signal on", "instance", c.id, "url", c.url)
	return nil
}

func (c *cluster) heartbeats() {
	defer c.wg.Done()
	t := time.NewTicker(c.beat)
	defer t.Stop()
	for {
		select {
		case <-c.stopc:
			return
		case <-t.C:
			if c.crashed.Load() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.beat)
			err := c.st.SignalHeartbeat(ctx, c.id, c.url)
			cancel()
			if err != nil {
				c.log.Warn("signal heartbeat failed", "err", err)
				continue
			}
			c.retryPresence()
		}
	}
}

// stop ends the heartbeats and removes this instance and its presence rows
// (after the signal server stopped, so no session registers meanwhile).
func (c *cluster) stop() {
	c.stopOnce.Do(func() {
		close(c.stopc)
		c.wg.Wait()
		c.client.CloseIdleConnections()
		if c.crashed.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.st.SignalInstanceGone(ctx, c.id); err != nil {
			c.log.Warn("remove signal instance", "err", err)
		}
	})
}

// Opened implements signal.Cluster. The returned token names the
// registration for Closed. If the presence row cannot be written (the
// database is unreachable for a moment), the registration is remembered
// and the write retried on each heartbeat until it succeeds or the session
// ends; meanwhile the peer is reachable from this instance only.
func (c *cluster) Opened(peer keys.Public) int64 {
	r := &localReg{peer: peer}
	c.mu.Lock()
	c.lastTok++
	tok := c.lastTok
	c.regs[tok] = r
	c.latest[peer] = tok
	c.mu.Unlock()
	if c.crashed.Load() {
		return tok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	epoch, err := c.st.SignalEpoch(ctx)
	if err == nil {
		if c.failPresence.Load() > 0 && c.failPresence.Add(-1) >= 0 {
			err = errors.New("test: presence write failed")
		} else {
			err = c.st.SignalOpened(ctx, peer, c.id, epoch)
		}
	}
	c.mu.Lock()
	if err != nil {
		r.pending = true
	} else {
		r.epoch = epoch
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("record signal presence; retrying on the next heartbeat", "peer", peer.Short(), "err", err)
	}
	return tok
}

// retryPresence writes the presence rows whose first write failed, each
// with a fresh epoch (heartbeat goroutine). A retry never takes a live row
// of another instance (SignalReopened): its fresh epoch says nothing about
// which registration is newer.
func (c *cluster) retryPresence() {
	type todo struct {
		tok  int64
		peer keys.Public
	}
	var list []todo
	c.mu.Lock()
	for tok, r := range c.regs {
		if r.pending && c.latest[r.peer] == tok {
			list = append(list, todo{tok, r.peer})
		}
	}
	c.mu.Unlock()
	for _, t := range list {
		if c.crashed.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.beat)
		epoch, err := c.st.SignalEpoch(ctx)
		wrote := false
		if err == nil {
			wrote, err = c.st.SignalReopened(ctx, t.peer, c.id, epoch, c.ttl)
		}
		cancel()
		if err != nil {
			c.log.Warn("record signal presence (retry)", "peer", t.peer.Short(), "err", err)
			return // the database is still away: the next heartbeat retries
		}
		if !wrote {
			continue // another live instance holds the peer; try again later
		}
		c.stats.reopened.Add(1)
		c.mu.Lock()
		r, alive := c.regs[t.tok]
		if alive {
			r.epoch, r.pending = epoch, false
		}
		c.mu.Unlock()
		if !alive {
			// The session ended meanwhile: remove the row just written.
			ctx, cancel := context.WithTimeout(context.Background(), c.beat)
			if err := c.st.SignalClosed(ctx, t.peer, c.id, epoch); err != nil {
				c.log.Warn("remove signal presence", "peer", t.peer.Short(), "err", err)
			}
			cancel()
		}
	}
}

// Closed implements signal.Cluster. The row is kept if a newer session of
// the peer is registered here: the row (whatever its epoch) then names the
// instance that holds the peer, which is right.
func (c *cluster) Closed(peer keys.Public, tok int64) {
	defer c.stats.closed.Add(1)
	c.mu.Lock()
	r := c.regs[tok]
	delete(c.regs, tok)
	newer := false
	if l, ok := c.latest[peer]; ok && l == tok {
		delete(c.latest, peer)
	} else if ok {
		newer = true
	}
	c.mu.Unlock()
	if r == nil || r.epoch == 0 || newer || c.crashed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.st.SignalClosed(ctx, peer, c.id, r.epoch); err != nil {
		c.log.Warn("remove signal presence", "peer", peer.Short(), "err", err)
	}
}

// Forward implements signal.Cluster. After a request to an instance fails
// to connect or times out, envelopes for that instance are answered
// NOT_CONNECTED at once for breakFor (a circuit breaker): one unreachable
// instance must not hold every sender's queue for a forward timeout each.
func (c *cluster) Forward(ctx context.Context, e *signalpb.Envelope) signal.Delivery {
	to := keys.Public(e.To)
	inst, target, ok, err := c.st.SignalLookup(ctx, to, c.ttl)
	if err != nil {
		c.stats.failures.Add(1)
		c.log.Warn("signal presence lookup", "peer", to.Short(), "err", err)
		return signal.NotConnected
	}
	if !ok || inst == c.id {
		// Nobody live holds the peer (a row of ours is a session that is
		// just ending: the registry already said no).
		c.stats.misses.Add(1)
		return signal.NotConnected
	}
	if c.isBroken(inst) {
		c.stats.broken.Add(1)
		return signal.NotConnected
	}
	body, err := proto.Marshal(e)
	if err != nil {
		return signal.NotConnected
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target+ForwardPath, bytes.NewReader(body))
	if err != nil {
		c.stats.failures.Add(1)
		c.log.Warn("forward signal envelope", "instance", inst, "err", err)
		return signal.NotConnected
	}
	var nonce [replay.NonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		c.stats.failures.Add(1)
		return signal.NotConnected
	}
	signForward(req.Header, c.key, time.Now(), hex.EncodeToString(nonce[:]), inst, body)
	resp, err := c.client.Do(req)
	if err != nil {
		c.stats.failures.Add(1)
		if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// Unreachable or too slow (not the sender's session ending).
			c.setBroken(inst)
		}
		c.log.Debug("forward signal envelope", "instance", inst, "err", err)
		return signal.NotConnected
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent:
		return signal.Delivered
	case http.StatusTooManyRequests:
		return signal.Busy
	case http.StatusNotFound:
		return signal.NotConnected
	default:
		c.stats.failures.Add(1)
		c.log.Warn("forward signal envelope refused", "instance", inst, "status", resp.Status)
		return signal.NotConnected
	}
}

func (c *cluster) isBroken(inst string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.broken[inst]
	if ok && !time.Now().Before(until) {
		delete(c.broken, inst)
		ok = false
	}
	return ok
}

func (c *cluster) setBroken(inst string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for i, until := range c.broken { // keep the map small
		if !now.Before(until) {
			delete(c.broken, i)
		}
	}
	c.broken[inst] = now.Add(time.Duration(c.breakFor.Load()))
}

// signForward sets the authentication headers of a forward to instance
// dest: time, nonce, destination and the MAC over them and the body.
func signForward(h http.Header, key []byte, now time.Time, nonce, dest string, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set("Content-Type", "application/x-protobuf")
	h.Set(headerTime, ts)
	h.Set(headerNonce, nonce)
	h.Set(headerTo, dest)
	h.Set(headerMAC, base64.StdEncoding.EncodeToString(forwardMAC(key, ts, nonce, dest, body)))
}

func forwardMAC(key []byte, ts, nonce, dest string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("forward v2\n"))
	for _, f := range []string{ts, nonce, dest} {
		m.Write([]byte(f))
		m.Write([]byte("\n"))
	}
	m.Write(body)
	return m.Sum(nil)
}

// forwardAuth is what the headers of a forward claim, checked for form.
type forwardAuth struct {
	ts    time.Time
	tsRaw string
	nonce []byte
	mac   []byte
}

// parseAuth checks the presence and form of the authentication headers
// and that the forward is addressed to this instance, before the body is
// read.
func (c *cluster) parseAuth(h http.Header) (forwardAuth, bool) {
	var a forwardAuth
	a.tsRaw = h.Get(headerTime)
	sec, err := strconv.ParseInt(a.tsRaw, 10, 64)
	if err != nil {
		return a, false
	}
	a.ts = time.Unix(sec, 0)
	if d := time.Since(a.ts); d > clockSkew || d < -clockSkew {
		return a, false
	}
	if a.nonce, err = hex.DecodeString(h.Get(headerNonce)); err != nil || len(a.nonce) != replay.NonceLen {
		return a, false
	}
	if a.mac, err = base64.StdEncoding.DecodeString(h.Get(headerMAC)); err != nil || len(a.mac) != sha256.Size {
		return a, false
	}
	// A forward signed for another instance is refused: captured on its
	// way there, it cannot be played to this one.
	if to := h.Get(headerTo); subtle.ConstantTimeCompare([]byte(to), []byte(c.id)) != 1 {
		return a, false
	}
	return a, true
}

// refuse answers 401 to a forward that failed authentication and logs it,
// at most once per refusalLogEvery with the count of those not logged.
func (c *cluster) refuse(w http.ResponseWriter, r *http.Request, why string) {
	c.stats.refused.Add(1)
	c.logMu.Lock()
	now := time.Now()
	logIt := now.Sub(c.lastRefLog) >= c.logEvery
	n := c.refSilent
	if logIt {
		c.lastRefLog, c.refSilent = now, 0
	} else {
		c.refSilent++
	}
	c.logMu.Unlock()
	if logIt {
		c.log.Warn("refused a forwarded signal envelope", "reason", why, "from", r.RemoteAddr, "refused_since_last_warning", n)
	}
	http.Error(w, "unauthenticated", http.StatusUnauthorized)
}

// ServeHTTP receives a forwarded envelope: 204 queued, 404 recipient not
// here, 429 its queue is full, 401 bad or missing authentication or a
// replay (nothing delivered), 400 malformed, 503 too many recent forwards
// to remember their nonces.
func (c *cluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := c.parseAuth(r.Header)
	if !ok {
		c.refuse(w, r, "missing, malformed or stale headers, or addressed to another instance")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, forwardMax))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusBadRequest)
		return
	}
	if !hmac.Equal(a.mac, forwardMAC(c.key, a.tsRaw, hex.EncodeToString(a.nonce), c.id, body)) {
		c.refuse(w, r, "bad MAC")
		return
	}
	// Only after the MAC: strangers cannot fill the nonce memory.
	switch err := c.guard.Check([32]byte{}, a.ts, a.nonce); {
	case errors.Is(err, replay.ErrFull):
		http.Error(w, "too many recent forwards", http.StatusServiceUnavailable)
		return
	case err != nil:
		c.stats.replayed.Add(1)
		c.refuse(w, r, err.Error())
		return
	}
	var e signalpb.Envelope
	if err := proto.Unmarshal(body, &e); err != nil {
		http.Error(w, "bad envelope", http.StatusBadRequest)
		return
	}
	sig := c.sig
	if sig == nil {
		http.Error(w, "signal not running", http.StatusNotFound)
		return
	}
	switch sig.Deliver(&e) {
	case signal.Delivered:
		w.WriteHeader(http.StatusNoContent)
	case signal.Busy:
		http.Error(w, "recipient busy", http.StatusTooManyRequests)
	case signal.Invalid:
		http.Error(w, "bad envelope", http.StatusBadRequest)
	default:
		http.Error(w, "recipient not connected", http.StatusNotFound)
	}
}

// clusterURL is where the other instances reach this one: --cluster-url,
// else the bound listen address (the hostname for an unspecified one),
// never the public URL, which may name a load balancer.
func clusterURL(cfg *Config, bound net.Addr) (string, error) {
	if cfg.ClusterURL != "" {
		return cfg.ClusterURL, nil
	}
	host, port, err := net.SplitHostPort(bound.String())
	if err != nil {
		return "", fmt.Errorf("derive cluster url: %w", err)
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		h, err := cfg.Hostname()
		if err != nil || h == "" {
			return "", errors.New("derive cluster url: listen address is unspecified and the hostname is unknown; set --cluster-url")
		}
		host = h
	}
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}).String(), nil
}

// startCluster turns on cross-instance signal on the shared store.
func (s *Server) startCluster(ctx context.Context, mux *http.ServeMux, key keys.Private) error {
	st, ok := s.store.(presenceStore)
	if !ok {
		return errors.New("--ha: the store does not record signal presence")
	}
	u, err := clusterURL(&s.cfg, s.ln.Addr())
	if err != nil {
		return err
	}
	var serverName string
	if s.cfg.TLS.Enabled() {
		if pu, err := url.Parse(s.ep.PublicURL); err == nil {
			serverName = pu.Hostname()
		}
	}
	c, err := newCluster(st, key, u, serverName, s.cfg.clusterBeat, s.cfg.clusterTTL, s.cfg.Logger)
	if err != nil {
		return err
	}
	if err := c.start(ctx); err != nil {
		return fmt.Errorf("start cross-instance signal: %w", err)
	}
	s.cluster = c
	mux.Handle(ForwardPath, c)
	return nil
}
