package main

import (
	"runtime/debug"
)

// version and commit are set at build time with -ldflags
// "-X main.version=... -X main.commit=..." (scripts/package.sh sets the
// version). Without a commit stamp, the revision the Go toolchain records
// from the git checkout it built in is used.
var (
	version = "dev"
	commit  = ""
)

// versionString is what --version prints after the program name.
func versionString() string {
	c := commit
	if c == "" {
		c = vcsRevision()
	}
	if c == "" {
		c = "unknown"
	}
	return version + " (commit " + c + ")"
}

// vcsRevision is the commit recorded in the binary by `go build` in a git
// checkout, with "-dirty" for uncommitted changes.
func vcsRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return rev + dirty
}
