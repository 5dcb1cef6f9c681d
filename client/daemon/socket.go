package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The system agent (root, TUN mode, the default state directory) serves its
// local API at SystemSocket, in a directory an operator group may enter,
// so that its members read the status without sudo (docs/cli.md).
const (
	SystemStateDir = "/var/lib/petrel"
	SystemRunDir   = "/run/petrel"
	SystemSocket   = SystemRunDir + "/" + SocketFile
	// DefaultOperatorGroup is the group whose members may call the
	// read-only part of the local API (created by the package).
	DefaultOperatorGroup = "petrel"
)

// readOnlyMethods are the local API calls an operator (a caller that is
// neither root nor the daemon's own user) may make: they change nothing
// and return no secrets. Every other call, including ones added later,
// needs root.
var readOnlyMethods = map[string]bool{
	"Status":    true,
	"DNSStatus": true,
	"Trace":     true,
}

// commandOf names the CLI command behind a local API call, for the
// PermissionDenied sentence.
var commandOf = map[string]string{
	"Up": "up", "Down": "down", "Login": "login", "Logout": "logout", "Shutdown": "down",
	"SetExitNode": "exit-node", "Ping": "ping", "DNSQuery": "dns query", "RecentLogs": "debug bundle", "Set": "set",
}

// listenUnix opens the local API socket. A daemon running as root makes it
// 0660 root:group when the operator group exists (else 0600, logged once),
// and a socket directory it creates (or SystemRunDir) 0750 root:group; any
// other daemon makes it 0600, owned by its user.
func (d *Daemon) listenUnix(path string) (net.Listener, error) {
	gid := -1
	// The operator group gets the socket only where the daemon can tell
	// callers apart (SO_PEERCRED): elsewhere the file mode is the only
	// control, and group members would get every method.
	if os.Geteuid() == 0 && d.opts.OperatorGroup != "" && !peerCredSupported {
		d.log.Warn("this platform cannot tell callers of the local API apart; it stays root-only", "group", d.opts.OperatorGroup)
	} else if os.Geteuid() == 0 && d.opts.OperatorGroup != "" {
		g, err := user.LookupGroup(d.opts.OperatorGroup)
		if err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else {
			d.log.Warn("operator group does not exist; the local API is root-only (create the group to let its members run petrel status)",
				"group", d.opts.OperatorGroup)
		}
	}
	dir := filepath.Dir(path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) || dir == SystemRunDir {
		if err := os.Chown(dir, 0, max(gid, 0)); err != nil && gid >= 0 {
			// Without CAP_CHOWN (a unit's capability bounding set).
			d.log.Warn("cannot give the socket dir to the operator group; the local API is root-only", "dir", dir, "err", err)
			gid = -1
		}
		mode := os.FileMode(0o700)
		if gid >= 0 {
			mode = 0o750
		}
		if err := os.Chmod(dir, mode); err != nil {
			return nil, fmt.Errorf("chmod socket dir: %w", err)
		}
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another petrel daemon is already listening on %s", path)
	}
	os.Remove(path)
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
		if err := os.Chown(path, 0, gid); err != nil {
			d.log.Warn("cannot give the socket to the operator group; the local API is root-only", "socket", path, "err", err)
			mode = 0o600
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return ln, nil
}

// callerCreds are the transport credentials of the local API: the server
// handshake reads the caller's uid from the socket (SO_PEERCRED on Linux).
type callerCreds struct{}

// callerInfo is the AuthInfo of a local API connection.
type callerInfo struct {
	uid   int
	known bool // false where the platform cannot tell (file modes still apply)
}

func (callerInfo) AuthType() string { return "peercred" }

func (callerCreds) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uid, known, err := peerUID(c)
	if err != nil {
		return nil, nil, fmt.Errorf("read caller credentials: %w", err)
	}
	return c, callerInfo{uid: uid, known: known}, nil
}

func (callerCreds) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, callerInfo{}, nil
}
func (callerCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}
func (c callerCreds) Clone() credentials.TransportCredentials { return c }
func (callerCreds) OverrideServerName(string) error           { return nil }

// mayCall decides whether the caller of ctx may call method (the last
// element of the gRPC full method name): root and the daemon's own user may
// call everything, others only readOnlyMethods.
func mayCall(ctx context.Context, fullMethod string) error {
	method := fullMethod[strings.LastIndex(fullMethod, "/")+1:]
	p, ok := peer.FromContext(ctx)
	ci, ok2 := callerInfo{}, false
	if ok {
		ci, ok2 = p.AuthInfo.(callerInfo)
	}
	if !ok2 {
		return status.Error(codes.PermissionDenied, "unknown caller")
	}
	if !ci.known || ci.uid == 0 || ci.uid == os.Geteuid() || readOnlyMethods[method] {
		return nil
	}
	cmd := commandOf[method]
	if cmd == "" {
		cmd = "…"
	}
	return status.Errorf(codes.PermissionDenied, "changing petrel needs root: run sudo petrel %s", cmd)
}

// serverOptions install the caller check on every call.
func serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(callerCreds{}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := mayCall(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := mayCall(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}
