package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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
	headerTime = "X-Petrel-Cluster-Time"
	headerMAC  = "X-Petrel-Cluster-Mac"
	// clockSkew bounds how old (or early) a forward's timestamp may be.
	clockSkew = 60 * time.Second
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
	SignalClosed(ctx context.Context, peer keys.Public, instance string, epoch int64) error
	SignalLookup(ctx context.Context, peer keys.Public, ttl time.Duration) (instance, url string, ok bool, err error)
}

// clusterStats count forwarding outcomes (tests and logs).
type clusterStats struct {
	misses   atomic.Uint64 // no live presence row: answered NOT_CONNECTED without a request
	failures atomic.Uint64 // the owner could not be reached or refused
	refused  atomic.Uint64 // incoming forwards refused for a bad or missing MAC
	closed   atomic.Uint64 // Closed calls done (tests wait for them)
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
	}
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
			if err := c.st.SignalHeartbeat(ctx, c.id, c.url); err != nil {
				c.log.Warn("signal heartbeat failed", "err", err)
			}
			cancel()
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

// Opened implements signal.Cluster.
func (c *cluster) Opened(peer keys.Public) int64 {
	if c.crashed.Load() {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	epoch, err := c.st.SignalEpoch(ctx)
	if err == nil {
		err = c.st.SignalOpened(ctx, peer, c.id, epoch)
	}
	if err != nil {
		// The peer stays reachable from this instance only.
		c.log.Warn("record signal presence", "peer", peer.Short(), "err", err)
		return 0
	}
	return epoch
}

// Closed implements signal.Cluster.
func (c *cluster) Closed(peer keys.Public, epoch int64) {
	defer c.stats.closed.Add(1)
	if epoch == 0 || c.crashed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.st.SignalClosed(ctx, peer, c.id, epoch); err != nil {
		c.log.Warn("remove signal presence", "peer", peer.Short(), "err", err)
	}
}

// Forward implements signal.Cluster.
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
	req.Header.Set("Content-Type", "application/x-protobuf")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set(headerTime, ts)
	req.Header.Set(headerMAC, base64.StdEncoding.EncodeToString(forwardMAC(c.key, ts, body)))
	resp, err := c.client.Do(req)
	if err != nil {
		c.stats.failures.Add(1)
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

func forwardMAC(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("forward\n"))
	m.Write([]byte(ts))
	m.Write([]byte("\n"))
	m.Write(body)
	return m.Sum(nil)
}

// ServeHTTP receives a forwarded envelope: 204 queued, 404 recipient not
// here, 429 its queue is full, 401 bad or missing MAC (nothing delivered),
// 400 malformed.
func (c *cluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, forwardMax))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusBadRequest)
		return
	}
	if !c.authentic(r.Header.Get(headerTime), r.Header.Get(headerMAC), body) {
		c.stats.refused.Add(1)
		c.log.Warn("refused a forwarded signal envelope: bad or missing MAC", "from", r.RemoteAddr)
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
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

// authentic checks the timestamp (within clockSkew of now) and the MAC
// over it and the body, in constant time.
func (c *cluster) authentic(ts, mac string, body []byte) bool {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := time.Since(time.Unix(sec, 0)); d > clockSkew || d < -clockSkew {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(mac)
	if err != nil {
		return false
	}
	return hmac.Equal(got, forwardMAC(c.key, ts, body))
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
