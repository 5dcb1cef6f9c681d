package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"petrel/client/engine"
	"petrel/client/mgmt"
	"petrel/internal/tlstrust"
	"petrel/proto/daemonpb"
)

// logoutTimeout bounds telling management about a logout.
const logoutTimeout = 10 * time.Second

// ErrNotLoggedIn is returned by Logout when the state dir holds no
// registration and no management server to tell.
var ErrNotLoggedIn = errors.New("this machine is not logged in")

// logout stops the engine, tells management to delete this peer and
// forgets the registration (the key stays). The registration is cleared
// even when management cannot be told; the response says so.
func (d *Daemon) logout(ctx context.Context) (*daemonpb.LogoutResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopReconnectLocked()
	d.stopEngineLocked()
	return Logout(ctx, d.state, d.opts.CAFile)
}

// Logout tells the management server of the saved profile to delete this
// peer, then clears the registration in the state dir (the map cache goes
// too; the key stays). It is the daemon's logout and what `petrel logout`
// runs when no daemon is running. The registration is cleared locally even
// when the server cannot be told: the response then says why
// (ServerTold false), and running Logout again retries telling it.
func Logout(ctx context.Context, st StateDir, caFile string) (*daemonpb.LogoutResponse, error) {
	prof, err := st.LoadProfile()
	if err != nil {
		return nil, err
	}
	if prof.ManagementURL == "" {
		return nil, ErrNotLoggedIn
	}
	resp := &daemonpb.LogoutResponse{}
	if err := deregister(ctx, st, prof.ManagementURL, caFile); err != nil {
		resp.ServerError = err.Error()
	} else {
		resp.ServerTold = true
	}
	if err := os.Remove(filepath.Join(st.Path, engine.CacheFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove map cache: %w", err)
	}
	prof.Registered = false // the URL stays: the next up needs only a setup key
	if err := st.SaveProfile(prof); err != nil {
		return nil, err
	}
	return resp, nil
}

// deregister sends Logout to the management server at mgmtURL, signed with
// the state dir's key. A server that no longer knows the key counts as
// told.
func deregister(ctx context.Context, st StateDir, mgmtURL, caFile string) error {
	key, err := st.Key()
	if err != nil {
		return err
	}
	var opts []grpc.DialOption
	if u, err := url.Parse(mgmtURL); err == nil && u.Scheme == "https" {
		roots, err := tlstrust.LoadRoots(caFile)
		if err != nil {
			return fmt.Errorf("--ca-file: %w", err)
		}
		opts = append(opts, grpc.WithTransportCredentials(tlstrust.NewCreds(tlstrust.ClientConfig(roots, u.Hostname()))))
	}
	ctx, cancel := context.WithTimeout(ctx, logoutTimeout)
	defer cancel()
	c, err := mgmt.Dial(ctx, mgmtURL, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Logout(ctx, key); err != nil {
		if s, ok := status.FromError(errors.Unwrap(err)); ok {
			return fmt.Errorf("management server %s: %s", mgmtURL, s.Message())
		}
		return fmt.Errorf("management server %s: %w", mgmtURL, err)
	}
	return nil
}
