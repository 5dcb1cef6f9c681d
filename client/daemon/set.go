package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/client/engine"
	"petrel/proto/daemonpb"
)

// setTimeout bounds the re-login of `petrel set --hostname` and the engine
// restart of `--accept-dns`.
const setTimeout = 30 * time.Second

// Set changes settings of the running agent and saves each in the profile,
// so the next up uses it too (`petrel set`). The exit node is applied
// first (the one change the map can refuse), then the hostname (sent to
// management at once by a re-login carrying the new name), then DNS (the
// engine restarts with the host integration on or off: the tunnel
// reconnects, the daemon keeps running).
func (a *api) Set(ctx context.Context, req *daemonpb.SetRequest) (*daemonpb.SetResponse, error) {
	d := a.d
	if req.Hostname == nil && req.ExitNode == nil && req.AcceptDns == nil {
		return nil, status.Error(codes.InvalidArgument, "nothing to set: give --hostname, --exit-node or --accept-dns")
	}
	if req.Hostname != nil {
		if err := checkHostname(req.GetHostname()); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil, status.Error(codes.Unavailable, "daemon is stopping")
	}
	prof, err := d.state.LoadProfile()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &daemonpb.SetResponse{}
	if req.ExitNode != nil {
		if d.eng == nil {
			return nil, status.Error(codes.FailedPrecondition, "petrel is down: the exit node is chosen among the peers of a running agent; run petrel up first")
		}
		prefs, err := d.eng.SetExitNode(exitRequest(req.GetExitNode()))
		if errors.Is(err, engine.ErrNoSuchExitNode) {
			return nil, status.Error(codes.NotFound, err.Error())
		}
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		prof.Exit = exitProfile(prefs)
		if err := d.state.SaveProfile(prof); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		resp.Applied = append(resp.Applied, "exit node: "+req.GetExitNode())
	}
	ctx, cancel := context.WithTimeout(ctx, setTimeout)
	defer cancel()
	if req.Hostname != nil {
		prof.Hostname = strings.TrimSpace(req.GetHostname())
		if err := d.state.SaveProfile(prof); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		msg := "hostname: " + prof.Hostname + " (saved; sent to management at the next up)"
		if d.eng != nil && prof.Registered {
			cfg, err := d.engineConfig(prof, prof.ManagementURL, credential{})
			if err != nil {
				return nil, status.Error(codes.Internal, err.Error())
			}
			d.eng.SetHostname(prof.Hostname) // its reconnects send the new name too
			if _, err := engine.Register(ctx, cfg); err != nil {
				return nil, status.Errorf(codes.Unavailable, "hostname saved, but management was not told: %v", err)
			}
			msg = "hostname: " + prof.Hostname + " (sent to management)"
		}
		resp.Applied = append(resp.Applied, msg)
	}
	if req.AcceptDns != nil {
		on := req.GetAcceptDns()
		prof.AcceptDNS = &on
		if err := d.state.SaveProfile(prof); err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		msg := fmt.Sprintf("accept DNS: %t", on)
		if d.eng != nil {
			d.stopEngineLocked()
			if err := d.startEngineLocked(ctx, prof, credential{}); err != nil {
				return nil, status.Errorf(codes.Unavailable, "DNS setting saved, but the agent did not come back up: %v (run petrel up)", err)
			}
			msg += " (the tunnel reconnected to apply it)"
		}
		resp.Applied = append(resp.Applied, msg)
	}
	return resp, nil
}

// exitRequest turns `--exit-node` into the engine's request.
func exitRequest(v string) *daemonpb.SetExitNodeRequest {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "none", "off", "":
		return &daemonpb.SetExitNodeRequest{Off: true}
	case "auto":
		return &daemonpb.SetExitNodeRequest{Auto: true}
	}
	return &daemonpb.SetExitNodeRequest{Peer: strings.TrimSpace(v)}
}

// checkHostname refuses an empty name or one with spaces or control
// characters (management derives the DNS label from it).
func checkHostname(h string) error {
	h = strings.TrimSpace(h)
	if h == "" {
		return errors.New("--hostname is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("--hostname is %d bytes long (at most 253)", len(h))
	}
	for _, r := range h {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("--hostname %q: no spaces or control characters", h)
		}
	}
	return nil
}
