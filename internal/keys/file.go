package keys

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WriteFileAtomic writes data to path with the given mode: it writes a
// temporary file in the same directory, fsyncs it, renames it over path and
// fsyncs the directory, so a crash leaves either the old or the new content.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod temp file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync temp file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close temp file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename temp file: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// LoadOrCreatePrivate reads a base64 private key from path, or creates one
// (mode 0600, atomic write) if the file does not exist. created reports which.
func LoadOrCreatePrivate(path string) (k Private, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err = ParsePrivate(strings.TrimSpace(string(b)))
		if err != nil {
			return k, false, fmt.Errorf("parse key file %s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return k, false, fmt.Errorf("read key file: %w", err)
	}
	if k, err = NewPrivate(); err != nil {
		return k, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return k, false, fmt.Errorf("create key dir: %w", err)
	}
	if err := WriteFileAtomic(path, []byte(k.String()+"\n"), 0o600); err != nil {
		return k, false, err
	}
	return k, true, nil
}
