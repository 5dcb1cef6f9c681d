package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Info is one package's definition.
type Info = nfpm.Info

// Inputs are what both package definitions are built from.
type Inputs struct {
	Version string    // Debian version, from DebVersion
	Arch    string    // GOARCH of the binaries
	BinDir  string    // holds the petrel and petrel-server binaries
	SrcDir  string    // this directory: systemd/, debian/, petrel-server.yaml
	MTime   time.Time // of every file and of the archives
}

// maintainer is the Maintainer field (a reserved .invalid domain until
// the project has a contact address).
const maintainer = "Petrel maintainers <maintainers@petrel.invalid>"

// Agent is the petrel package: the agent binary, its unit (enabled on
// first install by postinst) and its state directory, private to root.
// postinst also creates the operator group petrel (members may run petrel
// status without sudo).
func Agent(in Inputs) *nfpm.Info {
	return in.info("petrel", "Petrel mesh VPN agent",
		"The petrel agent joins this machine to a Petrel network: WireGuard tunnels\n"+
			"to its peers, found and authorised through a petrel-server.",
		[]string{"adduser"},
		files.Contents{
			in.file("petrel", "/usr/bin/petrel", 0o755),
			in.src("systemd/petrel.service", "/lib/systemd/system/petrel.service", 0o644),
			dir("/var/lib/petrel", 0o700),
		})
}

// Server is the petrel-server package: the control-plane binary, its unit
// (not enabled: the config must be edited first), its config as a conffile
// and its state directory. The system user petrel-server is created by
// postinst, which also hands it the state directory and the config through
// dpkg-statoverride.
func Server(in Inputs) *nfpm.Info {
	return in.info("petrel-server", "Petrel control plane: management, signal, relay and STUN",
		"petrel-server serves a Petrel network: the management service agents\n"+
			"register with, signal, a relay and STUN, on one TCP port plus UDP 3478.",
		[]string{"adduser"},
		files.Contents{
			in.file("petrel-server", "/usr/bin/petrel-server", 0o755),
			in.src("systemd/petrel-server.service", "/lib/systemd/system/petrel-server.service", 0o644),
			{Source: filepath.Join(in.SrcDir, "petrel-server.yaml"), Destination: "/etc/petrel/server.yaml",
				Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o640}},
			dir("/var/lib/petrel-server", 0o750),
		})
}

func (in Inputs) info(name, summary, long string, depends []string, contents files.Contents) *nfpm.Info {
	scripts := filepath.Join(in.SrcDir, "debian", name)
	return &nfpm.Info{
		Name:          name,
		Arch:          in.Arch,
		Platform:      "linux",
		Version:       in.Version,
		VersionSchema: "none", // DebVersion already made it a Debian version
		Section:       "net",
		Priority:      "optional",
		Maintainer:    maintainer,
		Description:   summary + "\n" + long,
		MTime:         in.MTime,
		Overridables: nfpm.Overridables{
			Depends:  depends,
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(scripts, "postinst"),
				PreRemove:   filepath.Join(scripts, "prerm"),
				PostRemove:  filepath.Join(scripts, "postrm"),
			},
			Deb: nfpm.Deb{Compression: "gzip"},
		},
		DisableGlobbing: true,
	}
}

func (in Inputs) file(bin, dst string, mode os.FileMode) *files.Content {
	return &files.Content{Source: filepath.Join(in.BinDir, bin), Destination: dst,
		FileInfo: &files.ContentFileInfo{Mode: mode}}
}

func (in Inputs) src(rel, dst string, mode os.FileMode) *files.Content {
	return &files.Content{Source: filepath.Join(in.SrcDir, rel), Destination: dst,
		FileInfo: &files.ContentFileInfo{Mode: mode}}
}

func dir(dst string, mode os.FileMode) *files.Content {
	return &files.Content{Destination: dst, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: mode}}
}

// Build writes the package to outDir as NAME_VERSION_ARCH.deb and returns
// its path. Every source file must exist: nfpm would otherwise skip a
// missing one silently or fail late.
func Build(info *nfpm.Info, outDir string) (string, error) {
	for _, c := range info.Contents {
		if c.Source == "" {
			continue
		}
		if _, err := os.Stat(c.Source); err != nil {
			return "", fmt.Errorf("package %s: %w", info.Name, err)
		}
	}
	for _, s := range []string{info.Scripts.PostInstall, info.Scripts.PreRemove, info.Scripts.PostRemove} {
		if _, err := os.Stat(s); err != nil {
			return "", fmt.Errorf("package %s: %w", info.Name, err)
		}
	}
	nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("package %s: %w", info.Name, err)
	}
	path := filepath.Join(outDir, deb.Default.ConventionalFileName(info))
	tmp, err := os.CreateTemp(outDir, ".mkdeb-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if err := deb.Default.Package(info, tmp); err != nil {
		tmp.Close()
		return "", fmt.Errorf("package %s: %w", info.Name, err)
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// describeRE matches `git describe --tags --long` output of a vX.Y.Z tag.
var describeRE = regexp.MustCompile(`^v([0-9]+\.[0-9]+\.[0-9]+)(?:-([0-9A-Za-z.]+))?-([0-9]+)-g([0-9a-f]+)(-dirty)?$`)

// DevVersion is the version of a build from a tree without a release tag.
const DevVersion = "0.0.0~dev"

// DebVersion turns `git describe --tags --long --match 'v[0-9]*' --dirty`
// output into a Debian version that sorts the way releases do: v1.2.3 at
// the tag is 1.2.3, a pre-release v1.2.3-rc1 is 1.2.3~rc1 (before 1.2.3),
// five commits later 1.2.3+git5.gHASH, a dirty tree adds +dirty. Empty
// input (no tag) gives DevVersion.
func DebVersion(describe string) (string, error) {
	describe = strings.TrimSpace(describe)
	if describe == "" {
		return DevVersion, nil
	}
	m := describeRE.FindStringSubmatch(describe)
	if m == nil {
		return "", fmt.Errorf("version %q: want git describe --long output of a vX.Y.Z tag", describe)
	}
	v := m[1]
	if m[2] != "" {
		v += "~" + m[2]
	}
	if m[3] != "0" {
		v += "+git" + m[3] + ".g" + m[4]
	}
	if m[5] != "" {
		if m[3] == "0" {
			v += "+dirty"
		} else {
			v += ".dirty"
		}
	}
	return v, nil
}
