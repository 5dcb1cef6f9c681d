package cmdline

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Build identifies a binary: the stamped version and, when the build
// stamped them (scripts/build.sh does with -ldflags -X), commit and date.
type Build struct {
	Version string // "0.4.0"; "dev" when unstamped
	Commit  string // short revision, "-dirty" for uncommitted changes; "" to use the toolchain's
	Date    string // YYYY-MM-DD; "" to use the commit time the toolchain recorded
}

// String is the `--version` text after the program name, like
// "0.4.0 (commit 112304b1d2e3, built 2026-12-07, go1.26.8)". A missing
// commit or date comes from what `go build` records from a git checkout
// (vcs.revision, vcs.modified, vcs.time); the commit is "unknown" when
// neither has it (a -buildvcs=false build without -X main.commit).
func (b Build) String() string {
	bi, _ := debug.ReadBuildInfo()
	return b.format(bi, runtime.Version())
}

func (b Build) format(bi *debug.BuildInfo, goVersion string) string {
	rev, date := vcsStamp(bi)
	if b.Commit != "" {
		rev = b.Commit
	}
	if b.Date != "" {
		date = b.Date
	}
	if rev == "" {
		rev = "unknown"
	}
	v := b.Version
	if v == "" {
		v = "dev"
	}
	parts := []string{"commit " + rev}
	if date != "" {
		parts = append(parts, "built "+date)
	}
	parts = append(parts, goVersion)
	return v + " (" + strings.Join(parts, ", ") + ")"
}

// vcsStamp is the revision (12 digits, "-dirty" when modified) and the
// commit day recorded in the binary by `go build` in a git checkout.
func vcsStamp(bi *debug.BuildInfo) (rev, date string) {
	if bi == nil {
		return "", ""
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			date, _, _ = strings.Cut(s.Value, "T")
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "", date
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev, date
}
