package service

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// UnitName is the name of the agent's unit.
const UnitName = "petrel.service"

// Marker is the first line of a unit written by Install. Install replaces
// and Uninstall removes only units that start with it (or with Force).
const Marker = "# Written by `petrel service install`; `petrel service uninstall` removes it."

// DefaultStateDir is the root daemon's state directory.
const DefaultStateDir = "/var/lib/petrel"

// Config is what the unit runs: `BINARY daemon --state-dir STATEDIR ARGS...`.
type Config struct {
	Binary   string   // absolute path of the petrel binary
	StateDir string   // absolute path of the daemon's state directory
	Args     []string // further `petrel daemon` flags, in order
}

// DefaultConfig is the unit of the .deb package.
func DefaultConfig() Config {
	return Config{Binary: "/usr/bin/petrel", StateDir: DefaultStateDir}
}

// stateDirectory returns the StateDirectory= name when the state directory
// lies under /var/lib (systemd then creates it with mode 0700), or "".
func (c Config) stateDirectory() string {
	rel, ok := strings.CutPrefix(c.StateDir, "/var/lib/")
	if !ok || rel == "" {
		return ""
	}
	return rel
}

// validate checks what Render needs; every problem is reported.
func (c Config) validate() error {
	var errs []error
	for _, p := range []struct{ name, v string }{{"binary", c.Binary}, {"state directory", c.StateDir}} {
		switch {
		case p.v == "":
			errs = append(errs, fmt.Errorf("%s: empty path", p.name))
		case !filepath.IsAbs(p.v) || filepath.Clean(p.v) != p.v:
			errs = append(errs, fmt.Errorf("%s %q: want a clean absolute path", p.name, p.v))
		case p.v == "/":
			errs = append(errs, fmt.Errorf("%s: / is not allowed", p.name))
		case strings.ContainsFunc(p.v, func(r rune) bool { return !plainRune(r) }):
			errs = append(errs, fmt.Errorf("%s %q: a unit path may hold only letters, digits and _-./:=,@+", p.name, p.v))
		}
	}
	for _, a := range c.Args {
		if strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			errs = append(errs, fmt.Errorf("argument %q: control characters cannot be written into a unit", a))
		}
	}
	return errors.Join(errs...)
}

// Render returns the unit's text. The comments say why each setting is
// there, for the administrator who reads the installed file.
func Render(c Config) (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	argv := append([]string{c.Binary, "daemon", "--state-dir", c.StateDir}, c.Args...)
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = quoteArg(a)
	}
	var stateLines string
	if d := c.stateDirectory(); d != "" {
		stateLines = "# The state directory (key, registration, cleanup journal, socket): systemd\n" +
			"# creates it, private to root.\n" +
			"StateDirectory=" + d + "\nStateDirectoryMode=0700\n"
	} else {
		stateLines = "# The state directory (key, registration, cleanup journal, socket), writable\n" +
			"# even where ProtectSystem=/ProtectHome= below make its parent read-only.\n" +
			"ReadWritePaths=" + c.StateDir + "\n"
	}
	return fmt.Sprintf(unitTemplate, strings.Join(quoted, " "), stateLines), nil
}

// unitTemplate has two holes: the ExecStart command line and the state
// directory lines.
const unitTemplate = `[Unit]
Description=Petrel mesh VPN agent
# The agent retries the control plane with backoff, so it does not wait for
# network-online.target; it starts after systemd-resolved so that the DNS
# mode "auto" finds it.
Wants=network-pre.target
After=network-pre.target systemd-resolved.service

[Service]
Type=simple
ExecStart=%s
Restart=on-failure
RestartSec=2s
# On SIGTERM the daemon undoes what it changed on the host (interface,
# routes, rules, firewall, DNS) before it exits.
TimeoutStopSec=30s
%s
# Root, but only with the capabilities the agent uses:
#   CAP_NET_ADMIN        TUN device, addresses, routes and policy rules over
#                        netlink, nftables, SO_MARK on control-plane sockets,
#                        net sysctls (src_valid_mark, forwarding)
#   CAP_NET_RAW          raw ICMP sockets (petrel ping) where unprivileged
#                        ICMP sockets are not allowed
#   CAP_NET_BIND_SERVICE the DNS resolver on port 53
#   CAP_DAC_OVERRIDE     writing resolv.conf or reading a --ca-file that root
#                        does not own
#   CAP_CHOWN            giving /run/petrel and its socket to the operator
#                        group (petrel status without sudo)
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE CAP_DAC_OVERRIDE CAP_CHOWN
NoNewPrivileges=yes
# /usr and /boot read-only. Not "full" or "strict": the agent writes
# /etc/resolv.conf (DNS mode "file") and /proc/sys/net.
ProtectSystem=yes
ProtectHome=read-only
PrivateTmp=yes
# Netlink for routes, rules and nftables; unix sockets for D-Bus
# (systemd-resolved) and the local API; IP for everything else.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
# The kernel still loads tun and nf_tables on demand; the agent itself never
# loads modules.
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
# Left out on purpose, each would break the agent:
#   PrivateDevices=, ProtectClock=, DeviceAllow= hide /dev/net/tun
#   ProtectKernelTunables=  makes /proc/sys/net read-only
#   UMask=0077              would leave resolv.conf unreadable to other users
#   PrivateNetwork=, IPAddressDeny= cut the agent off the network it manages

[Install]
WantedBy=multi-user.target
`

// plainRune reports whether r needs no quoting in a unit file.
func plainRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:=,@+", r)
}

// quoteArg quotes one ExecStart word for systemd: a word of plain
// characters is written as it is, any other in double quotes with
// backslash escapes; "%%" and "$$" stop specifier and variable expansion.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool { return !plainRune(r) }) {
		return s
	}
	s = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%", "$", "$$").Replace(s)
	return `"` + s + `"`
}
