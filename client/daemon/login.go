package daemon

import (
	"context"
	"errors"
	"os"

	"petrel/client/engine"
	"petrel/proto/daemonpb"
)

// login registers the machine with management and saves the profile
// without connecting (`petrel login`). A running engine is left alone
// unless it targets another management server, in which case it stops.
func (d *Daemon) login(ctx context.Context, req *daemonpb.LoginRequest) (*daemonpb.LoginResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil, errors.New("daemon is stopping")
	}
	u, err := ValidateManagementURL(req.ManagementUrl)
	if err != nil {
		return nil, err
	}
	prof, err := d.state.LoadProfile()
	if err != nil {
		return nil, err
	}
	if u != prof.ManagementURL {
		prof.Registered = false
	}
	if !prof.Registered && req.SetupKey == "" && req.IdToken == "" {
		return nil, errors.New("this machine is not registered: a setup key is needed (--setup-key), or a sign-in where the server has an identity provider")
	}
	key, err := d.state.Key()
	if err != nil {
		return nil, err
	}
	hostname := req.Hostname
	if hostname == "" {
		hostname = prof.Hostname
	}
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	roots, err := d.rootCAs()
	if err != nil {
		return nil, err
	}
	resp, err := engine.Register(ctx, engine.Config{ManagementURL: u, SetupKey: req.SetupKey, IDToken: req.IdToken, Hostname: hostname,
		Key: key, Netstack: d.opts.Netstack, RootCAs: roots, Logger: d.opts.Logger})
	if err != nil {
		return nil, err
	}
	restart := false
	if d.eng != nil && (d.eng.ManagementURL() != u || d.eng.NeedsLogin()) {
		// Another server, or a sign-in that renews a refused login: the
		// running engine cannot continue as it is.
		restart = d.eng.ManagementURL() == u
		d.stopEngineLocked()
	}
	prof.ManagementURL, prof.Registered = u, true
	if req.Hostname != "" {
		prof.Hostname = req.Hostname
	}
	if err := d.state.SaveProfile(prof); err != nil {
		return nil, err
	}
	if restart { // the server knows the key again: reconnect by it
		if err := d.startEngineLocked(ctx, prof, credential{}); err != nil {
			return nil, err
		}
	}
	pc := resp.GetPeerConfig()
	return &daemonpb.LoginResponse{Ip: pc.GetAddress(), Fqdn: pc.GetFqdn()}, nil
}
