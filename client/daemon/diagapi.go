package daemon

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/proto/daemonpb"
)

// DNSStatus reports the resolver and the host integration (`petrel dns status`).
func (a *api) DNSStatus(ctx context.Context, _ *daemonpb.DNSStatusRequest) (*daemonpb.JSONReply, error) {
	eng := a.d.engine()
	if eng == nil {
		return nil, status.Error(codes.FailedPrecondition, "petrel is down: run petrel up first")
	}
	b, err := json.Marshal(eng.DNSStatus())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &daemonpb.JSONReply{Json: string(b)}, nil
}

// DNSQuery resolves a name through the agent's resolver (`petrel dns query`).
func (a *api) DNSQuery(ctx context.Context, req *daemonpb.DNSQueryRequest) (*daemonpb.JSONReply, error) {
	eng := a.d.engine()
	if eng == nil {
		return nil, status.Error(codes.FailedPrecondition, "petrel is down: run petrel up first")
	}
	if strings.TrimSpace(req.Name) == "" {
		return nil, status.Error(codes.InvalidArgument, "a name is needed")
	}
	typ := strings.ToUpper(strings.TrimSpace(req.Type))
	if typ == "" {
		typ = "A"
	}
	qtype, ok := mdns.StringToType[typ]
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "unknown record type %q", req.Type)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ans, err := eng.DNSQuery(ctx, req.Name, qtype)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	b, err := json.Marshal(ans)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &daemonpb.JSONReply{Json: string(b)}, nil
}

// Trace says which firewall rule decides a new packet (`petrel debug trace`).
func (a *api) Trace(ctx context.Context, req *daemonpb.TraceRequest) (*daemonpb.TraceReply, error) {
	eng := a.d.engine()
	if eng == nil {
		return nil, status.Error(codes.FailedPrecondition, "petrel is down: run petrel up first")
	}
	r, err := eng.Trace(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return r, nil
}

// RecentLogs returns the daemon's recent log lines (`petrel debug bundle`).
// It works whether or not the agent is up.
func (a *api) RecentLogs(context.Context, *daemonpb.RecentLogsRequest) (*daemonpb.RecentLogsReply, error) {
	lines, dropped := a.d.logs.Lines()
	return &daemonpb.RecentLogsReply{Lines: lines, Dropped: dropped}, nil
}
