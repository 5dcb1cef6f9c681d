package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/client/mgmt"
	"petrel/internal/backoff"
	"petrel/management/netmap"
	"petrel/proto/managementpb"
)

// AgentVersion is reported to management.
var AgentVersion = "dev"

func (e *Engine) loginRequest() *managementpb.LoginRequest {
	var jwt string
	if !e.idTokenSent.Load() {
		jwt = e.cfg.IDToken
	}
	return &managementpb.LoginRequest{
		Jwt:      jwt,
		SetupKey: e.cfg.SetupKey,
		Hostname: e.Hostname(),
		Meta: &managementpb.PeerMeta{Hostname: e.Hostname(), Os: runtime.GOOS,
			AgentVersion: AgentVersion, NetstackMode: e.cfg.Netstack},
	}
}

// ErrLoginRefused is returned when management refuses the login (unknown
// or bad setup key, deleted peer): retrying cannot help.
var ErrLoginRefused = errors.New("management refused login")

// login registers or re-authenticates, retrying while management is
// unreachable until ctx ends. Refusals (bad key) and a server certificate
// that is not trusted fail at once.
func (e *Engine) login(ctx context.Context) (*managementpb.LoginResponse, error) {
	bo := backoff.Backoff{Min: 500 * time.Millisecond, Max: 5 * time.Second}
	var lastErr error
	attempt := 0
	for {
		resp, err := e.mgmt.Login(ctx, e.cfg.Key, e.loginRequest())
		if err == nil {
			e.idTokenSent.Store(true) // re-logins authenticate by key
			e.mgmtUp.Store(true)
			return resp, nil
		}
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.Unauthenticated, codes.PermissionDenied, codes.FailedPrecondition, codes.InvalidArgument, codes.NotFound:
			return nil, fmt.Errorf("%w: %s", ErrLoginRefused, st.Message())
		}
		if cerr := e.managementCertError(); cerr != nil {
			return nil, cerr // retrying cannot help either, and the reason must show
		}
		lastErr = err
		attempt++
		wait := bo.Next()
		e.log.Debug("login failed, retrying", "err", err, "attempt", attempt, "in", wait)
		if h := e.cfg.OnLoginRetry; h != nil {
			h(attempt, describe(err), wait)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("management server %s unreachable after %d attempts: %s", e.cfg.ManagementURL, attempt, describe(lastErr))
		case <-time.After(wait):
		}
	}
}

func describe(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// syncLoop keeps a Sync stream open, reconnecting with jittered backoff.
func (e *Engine) syncLoop() {
	defer e.wg.Done()
	if e.cache.fromCache.Load() && !e.loginAfterCache() {
		return
	}
	// At most ~5 s (jittered up to 7.5 s) between attempts: a stream ends
	// when its instance dies or fences itself, and the agent should be
	// back on another one (or on this one after a database pause) within
	// seconds; a refused attempt costs the server one cheap answer.
	bo := backoff.Backoff{Min: 500 * time.Millisecond, Max: 5 * time.Second}
	for e.ctx.Err() == nil {
		start := time.Now()
		e.cache.streamMap.Store(false)
		err := e.mgmt.Sync(e.ctx, e.cfg.Key, &managementpb.SyncRequest{Meta: e.loginRequest().Meta,
			Capabilities: []managementpb.Capability{managementpb.Capability_CAPABILITY_DNS_QUERY}}, e.onSync)
		if e.cache.streamMap.Load() {
			e.markFresh() // current until the stream broke
		}
		e.mgmtUp.Store(false)
		if e.ctx.Err() != nil {
			return
		}
		if time.Since(start) > 30*time.Second {
			bo.Reset()
		}
		if errors.Is(err, mgmt.ErrSerialGap) {
			e.log.Info("serial gap in sync stream; resyncing")
			continue
		}
		if st, ok := status.FromError(err); ok && (st.Code() == codes.PermissionDenied || st.Code() == codes.NotFound ||
			st.Code() == codes.Unauthenticated) {
			// The peer was deleted (or never registered): retrying cannot
			// help until the user logs in again with a setup key.
			e.log.Warn("management no longer knows this peer; log in again with a setup key", "err", st.Message())
			e.forgotten()
			return
		}
		d := bo.Next()
		e.log.Info("sync stream ended; reconnecting", "err", err, "in", d.Round(time.Millisecond))
		select {
		case <-e.ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// onSync applies one Sync message (full map or delta) in serial order.
func (e *Engine) onSync(r *managementpb.SyncResponse) error {
	e.mgmtUp.Store(true)
	if r.ServerConfig != nil {
		e.applyServerConfig(r.ServerConfig)
	}
	if r.DnsQuery != nil {
		e.startDNSQuery(r.DnsQuery) // dnsquery.go; does not block
	}
	e.mu.Lock()
	var nm *managementpb.NetworkMap
	switch {
	case r.Full != nil:
		nm = r.Full
		e.rep.fullGen.Add(1) // a (re)opened stream: the server forgot our report
	case r.Delta != nil:
		if e.nm == nil {
			e.mu.Unlock()
			return mgmt.ErrSerialGap
		}
		nm = netmap.Apply(e.nm, r.Delta)
	default:
		e.mu.Unlock()
		return nil
	}
	e.nm = nm
	if nm.Self != nil {
		if e.self != nil && nm.Self.Address != e.self.Address {
			e.log.Warn("overlay address changed; restart the agent to apply", "old", e.self.Address, "new", nm.Self.Address)
		}
		e.self = nm.Self
	}
	e.mu.Unlock()
	e.cache.streamMap.Store(true)
	e.markFresh()
	e.applyMap(nm)
	e.saveCache()
	return nil
}

// applyMap makes the firewall, the peers, the routes and DNS follow nm.
func (e *Engine) applyMap(nm *managementpb.NetworkMap) {
	e.applyFirewall(nm) // before new peers can send
	e.reconcilePeers(nm)
	e.replan()
	e.applyDNS(nm)
}

// forgotten handles management refusing this peer (deleted by an admin):
// no peers, no cache, and the user must log in again with a setup key.
func (e *Engine) forgotten() {
	e.needsLogin.Store(true)
	e.dropCache()
	e.reconcilePeers(&managementpb.NetworkMap{})
}

// loginAfterCache logs in, for as long as it takes, after a start from the
// cache; false when the engine stops or management refuses the peer.
func (e *Engine) loginAfterCache() bool {
	bo := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	var resp *managementpb.LoginResponse
	for {
		var err error
		resp, err = e.login(e.ctx)
		if err == nil {
			break
		}
		switch {
		case e.ctx.Err() != nil:
			return false
		case errors.Is(err, ErrLoginRefused):
			e.log.Warn("management no longer knows this peer; log in again with a setup key", "err", err)
			e.forgotten()
			return false
		}
		// A certificate error (an expired certificate during the outage,
		// a captive portal) may be fixed while we run on the cache: keep
		// trying, and say why.
		d := bo.Next()
		e.log.Warn("management still unreachable; running on the cached map", "err", err, "retry_in", d.Round(time.Second))
		select {
		case <-e.ctx.Done():
			return false
		case <-time.After(d):
		}
	}
	e.cache.fromCache.Store(false)
	e.mu.Lock()
	if self := resp.GetPeerConfig(); self != nil && e.self != nil && self.Address != e.self.Address {
		e.log.Warn("overlay address changed; restart the agent to apply", "old", e.self.Address, "new", self.Address)
	}
	e.mu.Unlock()
	e.applyServerConfig(resp.GetServerConfig())
	e.log.Info("management reachable again; resyncing")
	return true
}
