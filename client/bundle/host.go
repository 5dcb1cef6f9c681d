package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Command is a host command whose output goes into a bundle.
type Command struct {
	Name string   // file name in the bundle
	Argv []string // the command
}

// HostCommands are the host's view of the network: addresses, routes and
// policy rules of every table, the nftables ruleset. A missing tool is
// recorded as an error, not fatal.
var HostCommands = []Command{
	{"host/ip-addr.txt", []string{"ip", "addr", "show"}},
	{"host/ip-route.txt", []string{"ip", "route", "show", "table", "all"}},
	{"host/ip6-route.txt", []string{"ip", "-6", "route", "show", "table", "all"}},
	{"host/ip-rule.txt", []string{"ip", "rule", "show"}},
	{"host/ip6-rule.txt", []string{"ip", "-6", "rule", "show"}},
	{"host/nft-ruleset.txt", []string{"nft", "list", "ruleset"}},
	{"host/resolvectl.txt", []string{"resolvectl", "status"}},
}

// commandTimeout bounds each host command.
const commandTimeout = 5 * time.Second

// RunCommands runs each command and returns its output (stdout, then any
// stderr) as a File.
func RunCommands(ctx context.Context, cmds []Command) []File {
	files := make([]File, 0, len(cmds))
	for _, c := range cmds {
		cctx, cancel := context.WithTimeout(ctx, commandTimeout)
		var out, stderr bytes.Buffer
		cmd := exec.CommandContext(cctx, c.Argv[0], c.Argv[1:]...)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		cmd.WaitDelay = time.Second // a child holding the pipes open cannot hang us
		err := cmd.Run()
		cancel()
		if stderr.Len() > 0 {
			out.WriteString("\n--- stderr ---\n")
			out.Write(stderr.Bytes())
		}
		if err != nil {
			err = fmt.Errorf("%v: %w", c.Argv, err)
		}
		files = append(files, File{Name: c.Name, Data: out.Bytes(), Err: err})
	}
	return files
}

// ReadTail returns the last max bytes of the regular file at path, from
// its first whole line, as the bundle file name (a missing file is an error
// entry). It never blocks on a FIFO or device.
func ReadTail(name, path string, max int64) File {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return File{Name: name, Err: err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return File{Name: name, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return File{Name: name, Err: errors.New(path + ": not a regular file")}
	}
	if fi.Size() <= max {
		b, err := io.ReadAll(io.LimitReader(f, max))
		return File{Name: name, Data: b, Err: err}
	}
	// Read one byte before the window: if it ends a line, the window
	// starts with a whole one.
	if _, err := f.Seek(fi.Size()-max-1, io.SeekStart); err != nil {
		return File{Name: name, Err: err}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:] // start at a whole line
	} else {
		b = nil // one line longer than the window
	}
	b = append([]byte(fmt.Sprintf("(last %d of %d bytes)\n", len(b), fi.Size())), b...)
	return File{Name: name, Data: b, Err: err}
}
