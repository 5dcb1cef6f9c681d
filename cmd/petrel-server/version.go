package main

import "petrel/internal/cmdline"

// version, commit and date are set at build time with -ldflags "-X
// main.version=... -X main.commit=... -X main.date=..." (scripts/build.sh
// stamps the commit and date, scripts/package.sh and release.sh the
// version). Unstamped, the commit and date the Go toolchain records from
// the git checkout it built in are used.
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// versionString is what --version prints after the program name.
func versionString() string {
	return cmdline.Build{Version: version, Commit: commit, Date: date}.String()
}
