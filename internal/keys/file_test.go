package keys

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t *testing.T) Private {
	t.Helper()
	k, err := NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// onlyFile fails unless dir holds exactly the file name (no temp files).
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != name {
		t.Fatalf("directory holds %v, want only %s", names, name)
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestWriteFileAtomicSetsModeOverExisting writes over a world-readable
// file: the result has exactly the requested mode (an in-place write would
// keep 0644) and the new content, and no temporary file is left.
func TestWriteFileAtomicSetsModeOverExisting(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o640} {
		dir := t.TempDir()
		path := filepath.Join(dir, "key")
		if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
			t.Fatal(err)
		}
		if err := WriteFileAtomic(path, []byte("new\n"), mode); err != nil {
			t.Fatal(err)
		}
		if got := fileMode(t, path); got != mode {
			t.Fatalf("mode %v over a 0644 file, want %v", got, mode)
		}
		if b, _ := os.ReadFile(path); string(b) != "new\n" {
			t.Fatalf("content %q", b)
		}
		onlyFile(t, dir, "key")
	}
}

// failFS is the real file system with one step made to fail.
type failFS struct {
	osFS
	step string // create, chmod, write, sync, close, rename, syncdir
}

var errInjected = errors.New("injected failure")

func (f failFS) CreateTemp(dir, pattern string) (tempFile, error) {
	if f.step == "create" {
		return nil, errInjected
	}
	tf, err := f.osFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return failFile{tempFile: tf, fs: f}, nil
}

func (f failFS) Rename(from, to string) error {
	if f.step == "rename" {
		return errInjected
	}
	return f.osFS.Rename(from, to)
}

func (f failFS) SyncDir(dir string) error {
	if f.step == "syncdir" {
		return errInjected
	}
	return f.osFS.SyncDir(dir)
}

type failFile struct {
	tempFile
	fs failFS
}

func (f failFile) fail(step string) error {
	if f.fs.step == step {
		return errInjected
	}
	return nil
}

func (f failFile) Chmod(m os.FileMode) error {
	if err := f.fail("chmod"); err != nil {
		return err
	}
	return f.tempFile.Chmod(m)
}

// Write fails after putting half the data on disk, as a full disk does.
func (f failFile) Write(b []byte) (int, error) {
	if err := f.fail("write"); err != nil {
		n, _ := f.tempFile.Write(b[:len(b)/2])
		return n, err
	}
	return f.tempFile.Write(b)
}

func (f failFile) Sync() error {
	if err := f.fail("sync"); err != nil {
		return err
	}
	return f.tempFile.Sync()
}

func (f failFile) Close() error {
	if err := f.fail("close"); err != nil {
		f.tempFile.Close()
		return err
	}
	return f.tempFile.Close()
}

// TestWriteFailureKeepsOldFile makes each step before the rename fail: the
// error is returned, the old file keeps its content and mode, and the
// temporary file is removed.
func TestWriteFailureKeepsOldFile(t *testing.T) {
	old := mustKey(t).String() + "\n"
	for _, step := range []string{"create", "chmod", "write", "sync", "close", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "key")
			if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
				t.Fatal(err)
			}
			err := writeFileAtomic(failFS{step: step}, path, []byte(mustKey(t).String()+"\n"), 0o600)
			if !errors.Is(err, errInjected) {
				t.Fatalf("got %v, want the injected failure", err)
			}
			if b, _ := os.ReadFile(path); string(b) != old {
				t.Fatalf("old content damaged: %q", b)
			}
			if got := fileMode(t, path); got != 0o600 {
				t.Fatalf("mode %v", got)
			}
			onlyFile(t, dir, "key")
		})
	}
	t.Run("syncdir", func(t *testing.T) {
		// After the rename the new content is in place; the error says it
		// may not be durable.
		dir := t.TempDir()
		path := filepath.Join(dir, "key")
		err := writeFileAtomic(failFS{step: "syncdir"}, path, []byte("new\n"), 0o600)
		if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "sync dir") {
			t.Fatalf("got %v", err)
		}
		onlyFile(t, dir, "key")
	})
}

// TestLoadOrCreatePrivate creates a key (0600, in a new 0700 directory) and
// loads the same key on the next call.
func TestLoadOrCreatePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "private.key")
	k, created, err := LoadOrCreatePrivate(path)
	if err != nil || !created || k.IsZero() {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if got := fileMode(t, path); got != 0o600 {
		t.Fatalf("key file mode %v", got)
	}
	if got := fileMode(t, dir); got != 0o700 {
		t.Fatalf("key dir mode %v", got)
	}
	again, created, err := LoadOrCreatePrivate(path)
	if err != nil || created || again != k {
		t.Fatalf("reload: %v created=%v same=%v", err, created, again == k)
	}
	onlyFile(t, dir, "private.key")
}

// TestBadKeyFileIsAnErrorNotANewKey: a key file that exists but is
// truncated, empty or garbage makes LoadOrCreatePrivate fail with ErrBadKey
// naming the file; the file is left untouched, never replaced by a new key.
func TestBadKeyFileIsAnErrorNotANewKey(t *testing.T) {
	good := mustKey(t).String()
	for name, content := range map[string][]byte{
		"empty":               nil,
		"newline only":        []byte("\n"),
		"truncated":           []byte(good[:20]),
		"truncated by a byte": []byte(good[:43] + "\n"),
		"NUL bytes":           make([]byte, 45), // what some file systems leave after a crash
		"garbage":             []byte("this is not a key at all, not even close!!\n"),
		"two keys":            []byte(good + "\n" + good + "\n"),
		"all-zero key":        []byte(strings.Repeat("A", 43) + "=\n"),
		"huge":                bytes.Repeat([]byte("A"), 1<<20),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "private.key")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			k, created, err := LoadOrCreatePrivate(path)
			if !errors.Is(err, ErrBadKey) || created || !k.IsZero() {
				t.Fatalf("got key=%v created=%v err=%v, want ErrBadKey and no key", !k.IsZero(), created, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			if b, _ := os.ReadFile(path); !bytes.Equal(b, content) {
				t.Fatal("bad key file was modified")
			}
			onlyFile(t, dir, "private.key")
		})
	}
}

// TestUnreadableKeyFileIsAnError: a key path that exists but cannot be read
// as a file (here a directory) is an error, not a reason for a new key.
func TestUnreadableKeyFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "private.key")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreatePrivate(path); err == nil || created {
		t.Fatalf("created=%v err=%v, want an error", created, err)
	}
}
