// Package bundle writes `petrel debug bundle` archives: one .tar.gz with
// what a maintainer needs to diagnose an agent (version, status, recent
// logs, the cleanup journal, the host's routes, rules, nftables and
// resolver), every file passed through a Redactor first, so no private
// key, setup key or token leaves the machine.
package bundle

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// File is one entry of a bundle. Err, when set, says why Data is missing
// or partial; it is listed in the archive's errors.txt.
type File struct {
	Name string
	Data []byte
	Err  error
}

// Summary says what Write put in the archive.
type Summary struct {
	Files    int
	Errors   int // files that could not be collected in full
	Redacted int // secrets removed
}

// Write writes files, redacted by r, as a gzip-compressed tar to w, under
// the directory prefix dir, with an index (README.txt) and errors.txt.
func Write(w io.Writer, dir string, files []File, r *Redactor, now time.Time) (Summary, error) {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	var sum Summary
	var index, errs strings.Builder
	fmt.Fprintf(&index, "Petrel debug bundle, %s\nSecrets (private keys, setup keys, tokens) are replaced by %s.\n\n",
		now.UTC().Format(time.RFC3339), Redacted)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	add := func(name string, data []byte) error {
		hdr := &tar.Header{Name: dir + "/" + name, Mode: 0o600, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, f := range files {
		data := r.Redact(f.Data)
		if f.Err != nil {
			sum.Errors++
			fmt.Fprintf(&errs, "%s: %s\n", f.Name, r.Redact([]byte(f.Err.Error())))
		}
		fmt.Fprintf(&index, "%-28s %8d bytes\n", f.Name, len(data))
		if f.Err != nil && len(data) == 0 {
			continue
		}
		if err := add(f.Name, data); err != nil {
			return sum, err
		}
		sum.Files++
	}
	if errs.Len() > 0 {
		if err := add("errors.txt", []byte(errs.String())); err != nil {
			return sum, err
		}
	}
	if err := add("README.txt", []byte(index.String())); err != nil {
		return sum, err
	}
	sum.Redacted = r.Count()
	if err := tw.Close(); err != nil {
		return sum, err
	}
	return sum, gz.Close()
}
