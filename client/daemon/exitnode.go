package daemon

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/client/engine"
	"petrel/proto/daemonpb"
)

// SetExitNode changes the running engine's exit-node choice and saves it in
// the profile, so it survives a restart of the agent.
func (a *api) SetExitNode(ctx context.Context, req *daemonpb.SetExitNodeRequest) (*daemonpb.ExitNodeStatus, error) {
	if req.Off && (req.Auto || req.Peer != "") || req.Auto && req.Peer != "" {
		return nil, status.Error(codes.InvalidArgument, "give one of: a peer, off, auto")
	}
	d := a.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.eng == nil {
		return nil, status.Error(codes.FailedPrecondition, "petrel is down: run petrel up first")
	}
	prefs, err := d.eng.SetExitNode(req)
	if errors.Is(err, engine.ErrNoSuchExitNode) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	prof, err := d.state.LoadProfile()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	prof.Exit = exitProfile(prefs)
	if err := d.state.SaveProfile(prof); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return d.eng.Status().ExitNode, nil
}
