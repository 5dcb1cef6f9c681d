//go:build linux

package service

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"petrel/internal/keys"
)

// hostSystemctl runs the host's systemctl. runDir is the directory that
// exists only while systemd is the running init (sd_booted(3)).
type hostSystemctl struct{ runDir string }

// HostSystemctl returns the host's service manager.
func HostSystemctl() Systemctl { return hostSystemctl{runDir: "/run/systemd/system"} }

func (h hostSystemctl) Booted() (bool, string) {
	fi, err := os.Stat(h.runDir)
	return err == nil && fi.IsDir(), h.runDir
}

func (hostSystemctl) Run(args ...string) error {
	out, err := exec.Command("systemctl", args...).CombinedOutput()
	if err == nil {
		return nil
	}
	cmd := "systemctl " + strings.Join(args, " ")
	if msg := strings.TrimSpace(string(out)); msg != "" {
		return fmt.Errorf("%s: %w: %s", cmd, err, msg)
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

func (o *Options) systemctl() Systemctl {
	if o.Systemctl != nil {
		return o.Systemctl
	}
	return HostSystemctl()
}

// requireSystemd fails, before anything is written, on a host where
// systemd is not the running init. verb is "install" or "uninstall",
// fileVerb what --no-start would do instead.
func requireSystemd(sc Systemctl, verb, fileVerb string) error {
	if ok, path := sc.Booted(); !ok {
		return fmt.Errorf("%w (%s does not exist): cannot %s the service; run `petrel daemon` under this host's init system, or pass --no-start to only %s the unit file",
			ErrNoSystemd, path, verb, fileVerb)
	}
	return nil
}

// Install writes the unit (unless it already has this text), then, unless
// NoStart, reloads systemd, enables the service and (re)starts it. Nothing
// is written when a check fails; when systemctl fails after the write, the
// previous unit file is put back.
func Install(o Options) (Result, error) {
	res := Result{Path: o.unitPath()}
	body, err := Render(o.Unit)
	if err != nil {
		return res, err
	}
	text := Marker + "\n" + body
	sc := o.systemctl()
	if !o.NoStart {
		if err := requireSystemd(sc, "install", "write"); err != nil {
			return res, err
		}
	}
	old, exists, err := readUnit(res.Path)
	if err != nil {
		return res, fmt.Errorf("read unit: %w", err)
	}
	if exists && !ours(old) && !o.Force {
		return res, fmt.Errorf("%s: %w; pass --force to replace it", res.Path, ErrForeign)
	}
	if !o.NoStart && o.DaemonRunning != nil && o.DaemonRunning() && sc.Run("is-active", "--quiet", UnitName) != nil {
		return res, fmt.Errorf("%w (its socket is in %s): stop it with `petrel down`, then install the service",
			ErrDaemonRunning, o.Unit.StateDir)
	}
	switch {
	case !exists:
		res.Action = Created
	case old == text:
		res.Action = Unchanged
	default:
		res.Action = Updated
	}
	if res.Action != Unchanged {
		if o.Unit.stateDirectory() == "" {
			// ReadWritePaths= needs the directory to exist at start.
			if err := os.MkdirAll(o.Unit.StateDir, 0o700); err != nil {
				return res, fmt.Errorf("create state directory: %w", err)
			}
		}
		if err := keys.WriteFileAtomic(res.Path, []byte(text), 0o644); err != nil {
			return res, fmt.Errorf("write unit: %w", err)
		}
	}
	if o.NoStart {
		return res, nil
	}
	if err := start(sc, res.Action); err != nil {
		return res, rollback(sc, res, old, err)
	}
	res.Started = true
	return res, nil
}

// start makes systemd run the unit: a new or changed unit is reloaded and
// restarted (so changed flags take effect); an unchanged one is only
// enabled and started if it is not running.
func start(sc Systemctl, a Action) error {
	steps := [][]string{{"daemon-reload"}, {"enable", UnitName}, {"restart", UnitName}}
	if a == Unchanged {
		steps = [][]string{{"enable", "--now", UnitName}}
	}
	for _, args := range steps {
		if err := sc.Run(args...); err != nil {
			return err
		}
	}
	return nil
}

// rollback puts the previous unit file back after a failed start (or
// disables and removes a new one) and returns cause with what was done.
func rollback(sc Systemctl, res Result, old string, cause error) error {
	var errs []error
	switch res.Action {
	case Created:
		errs = append(errs, sc.Run("disable", "--now", UnitName), os.Remove(res.Path))
	case Updated:
		errs = append(errs, keys.WriteFileAtomic(res.Path, []byte(old), 0o644))
	default:
		return cause
	}
	errs = append(errs, sc.Run("daemon-reload"))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w; undoing the install failed too: %w", cause, err)
	}
	if res.Action == Created {
		return fmt.Errorf("%w; the unit was removed again", cause)
	}
	return fmt.Errorf("%w; the previous unit file was put back", cause)
}

// Uninstall stops and disables the service (unless NoStart), removes the
// unit file and reloads systemd. The state directory is left alone. A
// missing unit is not an error (Action Absent).
func Uninstall(o Options) (Result, error) {
	res := Result{Path: o.unitPath()}
	sc := o.systemctl()
	if !o.NoStart {
		if err := requireSystemd(sc, "uninstall", "remove"); err != nil {
			return res, err
		}
	}
	old, exists, err := readUnit(res.Path)
	if err != nil {
		return res, fmt.Errorf("read unit: %w", err)
	}
	if !exists {
		res.Action = Absent
		return res, nil
	}
	if !ours(old) && !o.Force {
		return res, fmt.Errorf("%s: %w; pass --force to remove it", res.Path, ErrForeign)
	}
	if !o.NoStart {
		if err := sc.Run("disable", "--now", UnitName); err != nil {
			return res, err
		}
	}
	if err := os.Remove(res.Path); err != nil {
		return res, fmt.Errorf("remove unit: %w", err)
	}
	res.Action = Removed
	if !o.NoStart {
		if err := sc.Run("daemon-reload"); err != nil {
			return res, fmt.Errorf("unit removed, but %w", err)
		}
	}
	return res, nil
}
