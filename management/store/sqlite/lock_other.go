//go:build !unix

package sqlite

// lockFile is a no-op where flock(2) is unavailable: a second writer on the
// same data directory is not detected on these platforms.
type lockFile struct{}

func lockPath(dbPath string) string { return dbPath + ".lock" }

func acquireLock(string) (*lockFile, error) { return &lockFile{}, nil }

func (*lockFile) release() error { return nil }
