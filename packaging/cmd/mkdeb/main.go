// Command mkdeb writes the petrel and petrel-server .deb packages from
// built binaries. scripts/package.sh (`make package`) runs it:
//
//	mkdeb --bin-dir DIR --out DIR --arch GOARCH --describe "$(git describe ...)" --mtime UNIX
//	mkdeb --print-version --describe "$(git describe ...)"
//
// It prints the path of each package written (or only the version).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"petrel/packaging"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	binDir := fs.String("bin-dir", "", "directory holding the petrel and petrel-server binaries (required)")
	srcDir := fs.String("src-dir", "packaging", "the packaging directory (units, maintainer scripts, server.yaml)")
	outDir := fs.String("out", "", "directory to write the packages to (required)")
	arch := fs.String("arch", "", "GOARCH of the binaries (required)")
	describe := fs.String("describe", "", "`git describe --tags --long --match 'v[0-9]*' --dirty` output; empty: "+packaging.DevVersion)
	mtime := fs.Int64("mtime", 0, "modification time of every file, Unix seconds (the commit time; 0 = now)")
	printVersion := fs.Bool("print-version", false, "only print the Debian version --describe gives")
	if err := fs.Parse(args); err != nil {
		return err
	}
	version, err := packaging.DebVersion(*describe)
	if err != nil {
		return err
	}
	if *printVersion {
		fmt.Fprintln(out, version)
		return nil
	}
	if *binDir == "" || *outDir == "" || *arch == "" || fs.NArg() > 0 {
		return errors.New("usage: mkdeb --bin-dir DIR --out DIR --arch GOARCH [--src-dir DIR] [--describe S] [--mtime UNIX]")
	}
	t := time.Now()
	if *mtime > 0 {
		t = time.Unix(*mtime, 0)
	}
	in := packaging.Inputs{Version: version, Arch: *arch, BinDir: *binDir, SrcDir: *srcDir, MTime: t.UTC()}
	for _, info := range []func(packaging.Inputs) *packaging.Info{packaging.Agent, packaging.Server} {
		path, err := packaging.Build(info(in), *outDir)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, path)
	}
	return nil
}
