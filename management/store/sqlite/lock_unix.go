//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"petrel/management/store"
)

// lockFile is the exclusive single-writer lock on a database: an flock(2)
// LOCK_EX on PATH.lock next to the database file (in the data directory),
// held from Open to Close. flock locks belong to the open file description,
// so a second Open in the same process conflicts as a second process does,
// and the kernel drops the lock when the process dies (no stale locks).
type lockFile struct{ f *os.File }

// lockPath is the lock file guarding the database at dbPath.
func lockPath(dbPath string) string { return dbPath + ".lock" }

// acquireLock takes the lock for dbPath without waiting; when another holder
// has it, it fails with store.ErrLocked naming the directory, the lock file
// and the holder's pid (as the holder recorded it).
func acquireLock(dbPath string) (*lockFile, error) {
	p := lockPath(dbPath)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(p); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another petrel-server%s: lock file %s is held: %w",
				filepath.Dir(p), holder, p, store.ErrLocked)
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	// Record the holder for the next one's error message (best effort).
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lockFile{f: f}, nil
}

// release drops the lock (closing the file releases the flock). The file
// stays: removing it would let a waiter lock an unlinked inode.
func (l *lockFile) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
