package daemon

import (
	"petrel/client/engine"

	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"petrel/internal/keys"
	"petrel/internal/privdir"
)

// File names inside the state directory.
const (
	KeyFile     = "wg.key"
	ConfigFile  = "config.json"
	SocketFile  = "petrel.sock"
	JournalFile = "cleanup.journal"
	LogFile     = "daemon.log"
)

// Profile is the persisted agent configuration (what `petrel up` set).
type Profile struct {
	ManagementURL string      `json:"management_url"`
	Hostname      string      `json:"hostname,omitempty"`
	Registered    bool        `json:"registered"` // a Login with a setup key succeeded once
	Exit          ExitProfile `json:"exit_node,omitzero"`
	// AcceptDNS false: the host's resolver is not pointed at the agent
	// (`petrel set --accept-dns=false`); nil = the daemon's --dns-mode.
	AcceptDNS *bool `json:"accept_dns,omitempty"`
}

// ExitProfile is the saved exit-node choice (`petrel exit-node`, `up
// --exit-node-*`). The zero value follows the map's auto_apply routes with
// the LAN reachable and no kill switch.
type ExitProfile struct {
	Peer       string `json:"peer,omitempty"` // public key of the selected exit node
	Off        bool   `json:"off,omitempty"`
	BlockLAN   bool   `json:"block_lan,omitempty"`
	KillSwitch bool   `json:"kill_switch,omitempty"`
}

// Prefs converts the saved choice to the engine's form.
func (x ExitProfile) Prefs() engine.ExitPrefs {
	return engine.ExitPrefs{Peer: x.Peer, Off: x.Off, AllowLAN: !x.BlockLAN, KillSwitch: x.KillSwitch}
}

func exitProfile(p engine.ExitPrefs) ExitProfile {
	return ExitProfile{Peer: p.Peer, Off: p.Off, BlockLAN: !p.AllowLAN, KillSwitch: p.KillSwitch}
}

// StateDir is the agent's state directory (0700): key, profile, journal.
type StateDir struct{ Path string }

// Ensure creates the directory with mode 0700 if needed and tightens a
// looser existing one (it holds the private key).
func (s StateDir) Ensure() error {
	_, err := s.ensure()
	return err
}

// ensure is Ensure, also returning the previous mode of a directory it had
// to tighten (0 otherwise).
func (s StateDir) ensure() (os.FileMode, error) {
	loose, err := privdir.Ensure(s.Path)
	if err != nil {
		return 0, fmt.Errorf("state dir: %w", err)
	}
	return loose, nil
}

// Key loads the WireGuard private key, creating it on first use.
func (s StateDir) Key() (keys.Private, error) {
	if err := s.Ensure(); err != nil {
		return keys.Private{}, err
	}
	k, _, err := keys.LoadOrCreatePrivate(filepath.Join(s.Path, KeyFile))
	return k, err
}

// LoadProfile reads the profile; a missing file yields an empty profile.
func (s StateDir) LoadProfile() (Profile, error) {
	var p Profile
	b, err := os.ReadFile(filepath.Join(s.Path, ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, fmt.Errorf("read profile: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("parse profile %s: %w", filepath.Join(s.Path, ConfigFile), err)
	}
	return p, nil
}

// SaveProfile writes the profile atomically.
func (s StateDir) SaveProfile(p Profile) error {
	if err := s.Ensure(); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(p, "", "  ")
	return keys.WriteFileAtomic(filepath.Join(s.Path, ConfigFile), append(b, '\n'), 0o600)
}

// ValidateManagementURL checks a management URL given by the user and
// returns it normalised (scheme http or https, host and port present).
func ValidateManagementURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("management URL is empty")
	}
	if !strings.Contains(raw, "://") {
		return "", fmt.Errorf("management URL %q has no scheme (want http://host:port or https://host:port)", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("management URL %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("management URL %q: scheme %q not supported (want http or https)", raw, u.Scheme)
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("management URL %q has no host", raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("management URL %q: must be scheme://host[:port] only", raw)
	}
	u.Path = ""
	return u.String(), nil
}
