package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"petrel/client/engine"
	"petrel/internal/rpcerr"
	"petrel/proto/daemonpb"
)

// ErrOtherServer refuses an up to a management server other than the one
// this machine is registered with, without --force-reauth.
var ErrOtherServer = errors.New("registered with another management server")

// up logs in and starts the engine, or reports the running one (already).
// It changes nothing when the request asks for settings the running agent
// does not have: daemon flags that need a restart, or a hostname that
// `petrel set` changes (settingsError says which and how). Moving to
// another management server needs req.ForceReauth, and the running engine
// keeps the tunnel up until the login to the new server succeeded.
func (d *Daemon) up(ctx context.Context, req *daemonpb.UpRequest, progress func(*daemonpb.UpProgress)) (already bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if progress != nil { // login retries while management is unreachable
		d.upProgress.Store(&progress)
		defer d.upProgress.Store(nil)
	}
	if d.stopped {
		return false, errors.New("daemon is stopping")
	}
	prof, err := d.state.LoadProfile()
	if err != nil {
		return false, err
	}
	target := prof.ManagementURL
	if req.ManagementUrl != "" {
		if target, err = ValidateManagementURL(req.ManagementUrl); err != nil {
			return false, err
		}
	}
	switching := prof.Registered && prof.ManagementURL != "" && target != prof.ManagementURL
	if switching && !req.ForceReauth {
		return false, fmt.Errorf("%w: this machine is registered with %s; to move it to %s run "+
			"petrel up --management-url %s --setup-key KEY --force-reauth (the current connection stays up until the new login succeeds)",
			ErrOtherServer, prof.ManagementURL, target, target)
	}
	if d.eng != nil && d.eng.NeedsLogin() {
		d.stopEngineLocked()
		prof.Registered = false
	}
	diffs := d.flagDiffs(req.GetFlags())
	if d.eng != nil && !switching && req.Hostname != "" && req.Hostname != effectiveHostname(prof) {
		diffs = append(diffs, settingDiff{flag: "--hostname", have: effectiveHostname(prof), want: req.Hostname, live: true})
	}
	if len(diffs) > 0 {
		return false, settingsError(diffs)
	}
	if req.Hostname != "" {
		prof.Hostname = req.Hostname
	}
	if req.ExitNodeAllowLan != nil {
		prof.Exit.BlockLAN = !*req.ExitNodeAllowLan
	}
	if req.ExitNodeKillSwitch != nil {
		prof.Exit.KillSwitch = *req.ExitNodeKillSwitch
	}
	if target == "" {
		return false, errors.New("no management URL: run petrel up --management-url URL --setup-key KEY")
	}
	if d.eng != nil && !switching {
		if req.ExitNodeAllowLan == nil && req.ExitNodeKillSwitch == nil {
			return true, nil
		}
		if _, err := d.eng.SetExitNode(&daemonpb.SetExitNodeRequest{
			AllowLan: req.ExitNodeAllowLan, KillSwitch: req.ExitNodeKillSwitch}); err != nil {
			return false, err
		}
		return true, d.state.SaveProfile(prof)
	}
	cred := credential{setupKey: req.SetupKey, idToken: req.IdToken}
	if switching {
		if progress != nil {
			progress(&daemonpb.UpProgress{Stage: "management", Message: "logging in to " + target})
		}
		cfg, err := d.engineConfig(prof, target, cred)
		if err != nil {
			return false, err
		}
		if _, err := engine.Register(ctx, cfg); err != nil {
			return false, fmt.Errorf("log in to %s (nothing changed; still registered with %s): %w", target, prof.ManagementURL, err)
		}
		d.stopEngineLocked()
		d.dropMapCache()
		prof.ManagementURL, prof.Registered = target, true
		if err := d.state.SaveProfile(prof); err != nil {
			return false, err
		}
		cred = credential{} // used up by the login above
	}
	prof.ManagementURL = target
	if !prof.Registered && cred.empty() {
		return false, errors.New("this machine is not registered: a setup key is needed (--setup-key), or a sign-in where the server has an identity provider")
	}
	if progress != nil {
		progress(&daemonpb.UpProgress{Stage: "management", Message: "logging in to " + target})
	}
	return false, d.startEngineLocked(ctx, prof, cred)
}

// credential is what a login that registers (or signs in again) carries:
// a setup key, or the ID token of a user's sign-in. Both are used once and
// never saved.
type credential struct{ setupKey, idToken string }

func (c credential) empty() bool { return c.setupKey == "" && c.idToken == "" }

// startEngineLocked starts an engine for the profile (d.mu held, no engine
// running) and saves the profile as registered once it is up.
func (d *Daemon) startEngineLocked(ctx context.Context, prof Profile, cred credential) error {
	cfg, err := d.engineConfig(prof, prof.ManagementURL, cred)
	if err != nil {
		return err
	}
	eng, err := engine.New(cfg)
	if err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		d.lastErr = err.Error()
		return err
	}
	d.eng = eng
	d.live.Store(eng)
	d.lastErr = ""
	prof.Registered = true
	if err := d.state.SaveProfile(prof); err != nil {
		d.log.Warn("save profile", "err", err)
	}
	return nil
}

// engineConfig is the engine's config for the profile and the daemon's
// options, logging in to mgmtURL (with cred when registering or signing in).
func (d *Daemon) engineConfig(prof Profile, mgmtURL string, cred credential) (engine.Config, error) {
	key, err := d.state.Key()
	if err != nil {
		return engine.Config{}, err
	}
	roots, err := d.rootCAs()
	if err != nil {
		return engine.Config{}, err
	}
	dnsMode := d.opts.DNSMode
	if prof.AcceptDNS != nil && !*prof.AcceptDNS {
		dnsMode = "off"
	}
	cfg := engine.Config{
		ManagementURL: mgmtURL,
		SetupKey:      cred.setupKey,
		IDToken:       cred.idToken,
		OnLoginRetry:  d.loginRetry,
		Hostname:      effectiveHostname(prof),
		Key:           key,
		Netstack:      d.opts.Netstack,
		InterfaceName: d.opts.InterfaceName,
		MTU:           d.opts.MTU,
		WGPort:        d.opts.WGPort,
		SOCKS5Addr:    d.opts.SOCKS5Addr,
		ICELoopback:   d.opts.ICELoopback,
		ForceRelay:    d.opts.ForceRelay,
		Journal:       recorder{d.journal},
		Exit:          prof.Exit.Prefs(),
		StateDir:      d.opts.StateDir,
		DNSMode:       dnsMode,
		DNSAddr:       d.opts.DNSAddr,
		DNSNoBypass:   d.opts.DNSNoBypass,
		DNSCacheTTL:   d.opts.DNSCacheTTL,
		NoFirewall:    d.opts.NoFirewall,
		RootCAs:       roots,
		Logger:        d.opts.Logger,
	}
	if d.opts.Tune != nil {
		d.opts.Tune(&cfg)
	}
	return cfg, nil
}

// effectiveHostname is the name the agent logs in with.
func effectiveHostname(prof Profile) string {
	if prof.Hostname != "" {
		return prof.Hostname
	}
	h, _ := os.Hostname()
	return h
}

// dropMapCache removes the on-disk network map: it belongs to the
// registration, and a later login must not start from it.
func (d *Daemon) dropMapCache() {
	if err := os.Remove(filepath.Join(d.opts.StateDir, engine.CacheFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.log.Warn("remove map cache", "err", err)
	}
}

// settingDiff is one setting `petrel up` asked for that the running agent
// does not have.
type settingDiff struct {
	flag, have, want string
	arg              string // how to ask for it on the command line ("" = flag want)
	live             bool   // `petrel set` applies it; else the daemon must restart
}

// flagDiffs compares the daemon flags given to `petrel up` with the
// daemon's own.
func (d *Daemon) flagDiffs(f *daemonpb.UpFlags) []settingDiff {
	if f == nil {
		return nil
	}
	var out []settingDiff
	add := func(flag, have, want string) {
		if have != want {
			out = append(out, settingDiff{flag: flag, have: have, want: want})
		}
	}
	addBool := func(flag string, have, want bool) {
		if have != want {
			out = append(out, settingDiff{flag: flag, have: fmt.Sprint(have), want: fmt.Sprint(want),
				arg: fmt.Sprintf("%s=%t", flag, want)})
		}
	}
	mode := func(netstack bool) string {
		if netstack {
			return "netstack"
		}
		return "TUN"
	}
	o := d.opts
	if f.Netstack != nil && o.Netstack != f.GetNetstack() {
		out = append(out, settingDiff{flag: "--netstack", have: mode(o.Netstack), want: mode(f.GetNetstack()),
			arg: fmt.Sprintf("--netstack=%t", f.GetNetstack())})
	}
	if f.InterfaceName != nil && !o.Netstack {
		add("--interface", o.InterfaceName, f.GetInterfaceName())
	}
	if f.Mtu != nil {
		add("--mtu", fmt.Sprint(o.MTU), fmt.Sprint(f.GetMtu()))
	}
	if f.WgPort != nil && f.GetWgPort() != 0 {
		have := o.WGPort
		if d.eng != nil {
			have = d.eng.LocalPort()
		}
		add("--wg-port", fmt.Sprint(have), fmt.Sprint(f.GetWgPort()))
	}
	if f.ForceRelay != nil {
		addBool("--force-relay", o.ForceRelay, f.GetForceRelay())
	}
	if f.DnsMode != nil {
		add("--dns-mode", o.DNSMode, f.GetDnsMode())
	}
	if f.CaFile != nil {
		add("--ca-file", o.CAFile, f.GetCaFile())
	}
	return out
}

// settingsError says what differs and how to apply each difference.
func settingsError(diffs []settingDiff) error {
	var b strings.Builder
	b.WriteString("petrel is already running with other settings; nothing changed:")
	for _, x := range diffs {
		have := x.have
		if have == "" {
			have = "(none)"
		}
		arg := x.arg
		if arg == "" {
			arg = x.flag + " " + x.want
		}
		fmt.Fprintf(&b, "\n  %s: running with %s, asked for %s", x.flag, have, x.want)
		if x.live {
			fmt.Fprintf(&b, " — apply it now with: petrel set %s", arg)
		} else {
			fmt.Fprintf(&b, " — needs a restart: petrel down && petrel up %s …", arg)
		}
	}
	return errors.New(b.String())
}

// loginRetry tells a waiting `petrel up` that management could not be
// reached and when the next attempt is.
func (d *Daemon) loginRetry(attempt int, why string, next time.Duration) {
	if f := d.upProgress.Load(); f != nil {
		(*f)(&daemonpb.UpProgress{Stage: "management", Message: fmt.Sprintf(
			"cannot reach management (%s); attempt %d failed, retrying in %s", rpcerr.Text(errors.New(why)), attempt, next.Round(100*time.Millisecond))})
	}
}
