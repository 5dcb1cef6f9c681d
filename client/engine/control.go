package engine

import (
	"context"
	"net"
	"time"

	"github.com/pion/stun/v4"

	"petrel/internal/keys"
	"petrel/proto/managementpb"
	"petrel/proto/signalpb"
	relayclient "petrel/relay/client"
	signalclient "petrel/signal/client"
)

// applyServerConfig stores the relay token and, the first time, starts the
// signal and relay clients.
func (e *Engine) applyServerConfig(sc *managementpb.ServerConfig) {
	if sc == nil || !e.running() {
		return
	}
	if sc.Relay != nil && sc.Relay.Token != "" {
		tok := sc.Relay.Token
		e.relayToken.Store(&tok)
	}
	e.mu.Lock()
	first := e.serverCf == nil
	e.serverCf = sc
	e.mu.Unlock()
	if res := e.resolver(); res != nil && sc.Domains != nil {
		res.ApplyServerDomains(serverDomains(sc))
	}
	if !first {
		return
	}
	if target, useTLS, err := grpcTarget(sc.SignalUrl); err != nil {
		e.log.Warn("bad signal URL from management", "url", sc.SignalUrl, "err", err)
	} else {
		e.signal = signalclient.New(signalclient.Config{
			Target: target, TLS: useTLS, TLSConfig: e.controlTLS(), Key: e.cfg.Key, Logger: e.cfg.Logger,
			Dialer: func(ctx context.Context, addr string) (net.Conn, error) { return e.dialControl(ctx, "tcp", addr) },
		})
		e.signal.SetHandler(e.onSignal)
		e.signal.OnStateChange(func(connected bool) {
			if connected {
				e.links.signal.Add(1)
				e.forEachConn(func(c peerConn) { c.SignalConnected() })
			}
		})
		e.signal.OnError(func(de *signalclient.DeliveryError) {
			if de.Code == signalpb.ErrorCode_NOT_CONNECTED {
				e.mu.Lock()
				if r := e.peers[de.To]; r != nil {
					r.live.reportOffline(time.Now())
				}
				e.mu.Unlock()
			}
		})
		if err := e.signal.Start(e.ctx); err != nil {
			e.log.Warn("start signal client", "err", err)
		}
	}
	if sc.Relay != nil && len(sc.Relay.Urls) > 0 {
		e.relay = relayclient.New(relayclient.Config{
			URLs: sc.Relay.Urls, Key: e.pub, Logger: e.cfg.Logger, TLSConfig: e.controlTLS(),
			Token: func() string {
				if t := e.relayToken.Load(); t != nil {
					return *t
				}
				return ""
			},
			Dial: e.dialControl,
		})
		e.relay.SetReceiver(e.bind.DeliverRelay)
		e.relay.OnStateChange(func(connected bool, home string) {
			if connected {
				e.links.relay.Add(1)
				e.forEachConn(func(c peerConn) { c.RelayChanged() })
			}
		})
		e.bind.SetRelay(e.relay)
		if err := e.relay.Start(e.ctx); err != nil {
			e.log.Warn("start relay client", "err", err)
		}
	}
}

type peerConn interface {
	RelayChanged()
	SignalConnected()
}

func (e *Engine) forEachConn(fn func(peerConn)) {
	e.mu.Lock()
	conns := make([]peerConn, 0, len(e.peers))
	for _, r := range e.peers {
		conns = append(conns, r.conn)
	}
	e.mu.Unlock()
	for _, c := range conns {
		fn(c)
	}
}

func (e *Engine) stunURIs() []*stun.URI {
	e.mu.Lock()
	sc := e.serverCf
	e.mu.Unlock()
	if sc == nil {
		return nil
	}
	var out []*stun.URI
	for _, s := range sc.StunUrls {
		u, err := stun.ParseURI(s)
		if err != nil {
			e.log.Warn("bad STUN URL from management", "url", s, "err", err)
			continue
		}
		out = append(out, u)
	}
	return out
}

// onSignal dispatches a peer message to its Conn.
func (e *Engine) onSignal(from keys.Public, msg *signalpb.PeerMessage) {
	e.mu.Lock()
	r := e.peers[from]
	e.mu.Unlock()
	if r == nil {
		e.log.Debug("signal from unknown peer", "peer", from.Short())
		return
	}
	r.live.clearReport()
	r.conn.OnSignal(msg)
}

func (e *Engine) relayHome() string {
	if e.relay == nil {
		return ""
	}
	return e.relay.HomeURL()
}
