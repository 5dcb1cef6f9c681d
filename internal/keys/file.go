package keys

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxKeyFile bounds how much of a key file is read: a key is 44 base64
// characters plus a newline, so anything far longer is not a key file.
const maxKeyFile = 4096

// fileSystem is what WriteFileAtomic does to the disk, one method per step,
// so tests can make any step fail (osFS is the real one).
type fileSystem interface {
	CreateTemp(dir, pattern string) (tempFile, error)
	Rename(from, to string) error
	Remove(name string) error
	SyncDir(dir string) error
}

// tempFile is the part of *os.File that WriteFileAtomic uses.
type tempFile interface {
	Name() string
	Chmod(mode os.FileMode) error
	Write(b []byte) (int, error)
	Sync() error
	Close() error
}

type osFS struct{}

func (osFS) CreateTemp(dir, pattern string) (tempFile, error) { return os.CreateTemp(dir, pattern) }
func (osFS) Rename(from, to string) error                     { return os.Rename(from, to) }
func (osFS) Remove(name string) error                         { return os.Remove(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems cannot sync a directory; there is nothing more to do.
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

// WriteFileAtomic writes data to path with the given mode: it writes a
// temporary file in the same directory (created 0600, then set to mode),
// fsyncs it, renames it over path and fsyncs the directory. A crash or an
// error before the rename leaves path as it was (the temporary file is
// removed on error); an error from the final directory sync means the new
// content is in place but may not survive a crash. The mode applies even
// when path existed with another mode, since the rename replaces the file.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeFileAtomic(osFS{}, path, data, mode)
}

func writeFileAtomic(fsys fileSystem, path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := fsys.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			fsys.Remove(tmp)
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
	if err := fsys.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename temp file: %w", err)
	}
	renamed = true
	if err := fsys.SyncDir(dir); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// ReadPrivate reads a base64 private key file. A file that is empty,
// truncated, too long, not base64 or the all-zero key is an error wrapping
// ErrBadKey that names the file.
func ReadPrivate(path string) (Private, error) {
	f, err := os.Open(path)
	if err != nil {
		return Private{}, fmt.Errorf("read key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return Private{}, fmt.Errorf("read key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return Private{}, fmt.Errorf("key file %s: %w: longer than %d bytes", path, ErrBadKey, maxKeyFile)
	}
	k, err := ParsePrivate(strings.TrimSpace(string(b)))
	if err != nil {
		return Private{}, fmt.Errorf("key file %s: %w", path, err)
	}
	if k.IsZero() {
		return Private{}, fmt.Errorf("key file %s: %w: all zeros", path, ErrBadKey)
	}
	return k, nil
}

// LoadOrCreatePrivate reads a base64 private key from path, or creates one
// (mode 0600, atomic write) if the file does not exist. created reports
// which. A file that exists but does not hold a valid key is an error
// (ErrBadKey): it is never replaced by a new key, which would silently
// change the peer's identity.
func LoadOrCreatePrivate(path string) (k Private, created bool, err error) {
	k, err = ReadPrivate(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Private{}, false, err
	}
	if k, err = NewPrivate(); err != nil {
		return Private{}, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Private{}, false, fmt.Errorf("create key dir: %w", err)
	}
	if err := WriteFileAtomic(path, []byte(k.String()+"\n"), 0o600); err != nil {
		return Private{}, false, err
	}
	return k, true, nil
}
