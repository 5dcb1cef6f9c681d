package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"petrel/client/bundle"
	"petrel/client/daemon"
	"petrel/proto/daemonpb"
)

// maxDaemonLog is how much of STATE_DIR/daemon.log a bundle takes (its end).
const maxDaemonLog = 4 << 20

func newBundleCmd(g *globalFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "bundle [-o FILE]",
		Short: "Write one archive with status, recent logs, the cleanup journal, routes, rules and version, secrets removed",
		Long: `Bundle collects what a maintainer needs to diagnose this agent into one
.tar.gz: version and platform, status and DNS status (when the daemon
runs), the daemon's recent log lines and the end of STATE_DIR/daemon.log,
the cleanup journal, the saved profile, the host's addresses, routes and
policy rules of every table, the nftables ruleset and resolv.conf.

Private keys, setup keys and tokens are replaced by [REDACTED] in every
file. Read the archive before you share it all the same.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeBundle(cmd.Context(), g, out, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "archive path (default ./petrel-debug-HOST-TIME.tar.gz; - for stdout)")
	return cmd
}

func writeBundle(ctx context.Context, g *globalFlags, out string, stdout io.Writer) error {
	now := time.Now()
	host, _ := os.Hostname()
	dir := "petrel-debug-" + safeName(host) + "-" + now.UTC().Format("20060102T150405Z")
	if out == "" {
		out = dir + ".tar.gz"
	}
	progress := io.Writer(stdout)
	if out == "-" {
		progress = os.Stderr
	}
	r := &bundle.Redactor{}
	if b, err := os.ReadFile(filepath.Join(g.stateDir, daemon.KeyFile)); err == nil {
		r.AddSecret(string(b))
	}
	if v := os.Getenv(SetupKeyEnv); v != "" {
		r.AddSecret(v)
	}

	fmt.Fprintln(progress, "collecting: version, daemon status and logs, state files, host network")
	files := []bundle.File{{Name: "version.txt", Data: versionInfo(now)}}
	files = append(files, daemonFiles(g)...)
	for _, f := range []struct{ name, file string }{
		{"state/cleanup.journal", daemon.JournalFile}, {"state/config.json", daemon.ConfigFile},
	} {
		files = append(files, bundle.ReadTail(f.name, filepath.Join(g.stateDir, f.file), maxDaemonLog))
	}
	if f := bundle.ReadTail("state/daemon.log", filepath.Join(g.stateDir, daemon.LogFile), maxDaemonLog); f.Err == nil || !os.IsNotExist(f.Err) {
		files = append(files, f)
	}
	files = append(files, bundle.ReadTail("host/resolv.conf", "/etc/resolv.conf", 1<<20))
	files = append(files, bundle.RunCommands(ctx, bundle.HostCommands)...)

	var buf bytes.Buffer
	sum, err := bundle.Write(&buf, dir, files, r, now)
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	if out == "-" {
		_, err = os.Stdout.Write(buf.Bytes())
	} else {
		err = writeFileAtomic(out, buf.Bytes())
	}
	if err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	fmt.Fprintf(progress, "wrote %s (%d files, %d KiB; %d secret(s) removed", out, sum.Files, (buf.Len()+1023)/1024, sum.Redacted)
	if sum.Errors > 0 {
		fmt.Fprintf(progress, "; %d item(s) could not be collected, see errors.txt", sum.Errors)
	}
	fmt.Fprintln(progress, ")")
	return nil
}

// daemonFiles asks a running daemon for its status, DNS status and recent
// logs; without a daemon the bundle says so and goes on.
func daemonFiles(g *globalFlags) []bundle.File {
	cl, closeFn, err := dialDaemon(g.socketPath())
	if err != nil {
		return []bundle.File{{Name: "daemon/status.json", Err: err}}
	}
	defer closeFn()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var files []bundle.File
	st, err := cl.Status(ctx, &daemonpb.StatusRequest{})
	f := bundle.File{Name: "daemon/status.json", Err: rpcErrOrNil(err)}
	if err == nil {
		f.Data, f.Err = json.MarshalIndent(toJSON(st), "", "  ")
	}
	files = append(files, f)
	dns, err := cl.DNSStatus(ctx, &daemonpb.DNSStatusRequest{})
	f = bundle.File{Name: "daemon/dns-status.json", Err: rpcErrOrNil(err)}
	if err == nil {
		var v any
		if f.Err = json.Unmarshal([]byte(dns.Json), &v); f.Err == nil {
			f.Data, f.Err = json.MarshalIndent(v, "", "  ")
		}
	}
	files = append(files, f)
	logs, err := cl.RecentLogs(ctx, &daemonpb.RecentLogsRequest{})
	f = bundle.File{Name: "daemon/recent.log", Err: rpcErrOrNil(err)}
	if err == nil {
		var b strings.Builder
		if logs.Dropped > 0 {
			fmt.Fprintf(&b, "(%d older lines not kept)\n", logs.Dropped)
		}
		for _, l := range logs.Lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		f.Data = []byte(b.String())
	}
	return append(files, f)
}

func rpcErrOrNil(err error) error {
	if err == nil {
		return nil
	}
	return rpcErr(err)
}

func versionInfo(now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "petrel %s\n%s %s/%s\ncollected %s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH,
		now.UTC().Format(time.RFC3339))
	if k, err := os.ReadFile("/proc/version"); err == nil {
		fmt.Fprintf(&b, "kernel: %s", k)
	}
	return []byte(b.String())
}

// safeName keeps letters, digits, '-' and '.' of s (a host name in a file name).
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, s)
	if s == "" {
		return "host"
	}
	return s
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file, so a failure leaves no half-written archive. A path that exists and
// is not a regular file (/dev/null, /dev/stdout, a FIFO) is written to, not
// replaced.
func writeFileAtomic(path string, data []byte) error {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".petrel-bundle-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
