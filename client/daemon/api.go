package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/internal/rpcerr"
	"petrel/proto/daemonpb"
)

// api implements the local gRPC API.
type api struct {
	daemonpb.UnimplementedDaemonServer
	d *Daemon
}

func (a *api) Up(req *daemonpb.UpRequest, stream daemonpb.Daemon_UpServer) error {
	timeout := 60 * time.Second
	if req.TimeoutMs > 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(stream.Context(), timeout)
	defer cancel()
	send := func(p *daemonpb.UpProgress) { _ = stream.Send(p) }
	already, err := a.d.up(ctx, req, send)
	if err != nil {
		return status.Error(codes.FailedPrecondition, rpcerr.Text(corruptProfile(err)))
	}
	if eng := a.d.engine(); already && eng != nil {
		p := progressOf(eng.Status())
		p.Stage, p.Message = "done", "petrel is already up"
		send(p)
		return nil
	}
	// Stream progress until connected (and, if asked, all peers connected).
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		eng := a.d.engine()
		if eng == nil {
			return status.Error(codes.Aborted, "agent went down")
		}
		st := eng.Status()
		p := progressOf(st)
		if key := p.String(); key != last {
			last = key
			send(p)
		}
		done := st.ManagementConnected && st.SignalConnected && (st.RelayConnected || !eng.HasRelay())
		if done && (!req.WaitPeers || int(p.PeersConnected) == len(st.Peers)) {
			send(&daemonpb.UpProgress{Stage: "done", Message: "connected",
				ManagementConnected: true, SignalConnected: st.SignalConnected, RelayConnected: st.RelayConnected,
				PeersConnected: p.PeersConnected, PeersTotal: p.PeersTotal})
			return nil
		}
		select {
		case <-ctx.Done():
			if stream.Context().Err() != nil {
				return stream.Context().Err()
			}
			// Up succeeded (the agent keeps trying in the background); report where it stands.
			send(&daemonpb.UpProgress{Stage: "done", Message: "still connecting in the background: " + p.Message,
				ManagementConnected: st.ManagementConnected, SignalConnected: st.SignalConnected,
				RelayConnected: st.RelayConnected, PeersConnected: p.PeersConnected, PeersTotal: p.PeersTotal})
			return nil
		case <-tick.C:
		}
	}
}

// corruptProfile explains a config.json that does not parse: the agent
// refuses to guess (read as empty, the machine would look unregistered);
// the key is in its own file, so removing config.json loses only the
// settings.
func corruptProfile(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) {
		return fmt.Errorf("state dir %s is corrupt: %w (remove it to start over: petrel up --management-url URL --setup-key KEY; the machine keeps its key)", ConfigFile, err)
	}
	return err
}

func progressOf(st *daemonpb.StatusResponse) *daemonpb.UpProgress {
	n := 0
	for _, p := range st.Peers {
		if p.Status == "connected" {
			n++
		}
	}
	p := &daemonpb.UpProgress{
		ManagementConnected: st.ManagementConnected, SignalConnected: st.SignalConnected,
		RelayConnected: st.RelayConnected, PeersConnected: int32(n), PeersTotal: int32(len(st.Peers)),
	}
	switch {
	case !st.ManagementConnected:
		p.Stage, p.Message = "management", "connecting to management"
	case !st.SignalConnected:
		p.Stage, p.Message = "signal", "connecting to signal"
	case !st.RelayConnected:
		p.Stage, p.Message = "relay", "connecting to relay"
	default:
		p.Stage, p.Message = "peers", "connecting peers"
	}
	return p
}

func (a *api) Down(ctx context.Context, _ *daemonpb.DownRequest) (*daemonpb.DownResponse, error) {
	if err := a.d.down(); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &daemonpb.DownResponse{}, nil
}

func (a *api) Logout(ctx context.Context, _ *daemonpb.LogoutRequest) (*daemonpb.LogoutResponse, error) {
	resp, err := a.d.logout(ctx)
	if errors.Is(err, ErrNotLoggedIn) {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return resp, nil
}

func (a *api) Status(ctx context.Context, _ *daemonpb.StatusRequest) (*daemonpb.StatusResponse, error) {
	eng := a.d.engine()
	if eng == nil {
		prof, err := a.d.state.LoadProfile()
		st := &daemonpb.StatusResponse{State: "down", ManagementUrl: prof.ManagementURL}
		if err != nil {
			// Unknown whether registered: not "needs-login", which
			// would invite a fresh registration.
			st.LastError = corruptProfile(err).Error()
			return st, nil
		}
		if !prof.Registered {
			st.State = "needs-login"
		}
		a.d.mu.Lock()
		st.LastError = rpcerr.Clean(a.d.lastErr) // no raw gRPC text from management or signal
		a.d.mu.Unlock()
		return st, nil
	}
	return eng.Status(), nil
}

func (a *api) Ping(req *daemonpb.PingRequest, stream daemonpb.Daemon_PingServer) error {
	eng := a.d.engine()
	if eng == nil {
		return status.Error(codes.FailedPrecondition, "agent is down: run petrel up")
	}
	count := int(req.Count)
	if count <= 0 {
		count = 3
	}
	interval := time.Second
	if req.IntervalMs > 0 {
		interval = time.Duration(req.IntervalMs) * time.Millisecond
	}
	timeout := 5 * time.Second
	if req.TimeoutMs > 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}
	ip, err := eng.ResolvePeer(req.Peer)
	if err != nil {
		return status.Error(codes.NotFound, err.Error())
	}
	for i := 0; i < count; i++ {
		if i > 0 {
			select {
			case <-stream.Context().Done():
				return stream.Context().Err()
			case <-time.After(interval):
			}
		}
		ctx, cancel := context.WithTimeout(stream.Context(), timeout)
		rtt, path, err := eng.Ping(ctx, ip)
		cancel()
		r := &daemonpb.PingReply{Ip: ip.String(), Seq: int32(i + 1), Path: path}
		if err != nil {
			r.Error = err.Error()
		} else {
			r.RttMs = float64(rtt.Microseconds()) / 1000
		}
		if err := stream.Send(r); err != nil {
			return err
		}
	}
	return nil
}

func (a *api) Shutdown(ctx context.Context, _ *daemonpb.ShutdownRequest) (*daemonpb.ShutdownResponse, error) {
	go a.d.Stop()
	return &daemonpb.ShutdownResponse{}, nil
}

func (a *api) Login(ctx context.Context, req *daemonpb.LoginRequest) (*daemonpb.LoginResponse, error) {
	timeout := 30 * time.Second
	if req.TimeoutMs > 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := a.d.login(ctx, req)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, rpcerr.Text(corruptProfile(err)))
	}
	return resp, nil
}
