package host

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// backupName is the backup's file name in the state dir; the record
// describing it (symlink target, mode) sits beside it with metaSuffix.
const (
	backupName = "resolv.conf.petrel-backup"
	metaSuffix = ".json"
)

// fileRecord is everything needed to restore resolv.conf, both in the
// journal entry and in the meta file beside the backup.
type fileRecord struct {
	Path       string      `json:"path"`
	Backup     string      `json:"backup"`
	Link       string      `json:"link,omitempty"`   // path was a symlink to Link
	Mode       fs.FileMode `json:"mode"`             // permission bits to restore
	Absent     bool        `json:"absent,omitempty"` // path did not exist
	Nameserver string      `json:"nameserver"`       // ours: identifies our file
}

func (r fileRecord) data() map[string]string {
	d := map[string]string{
		"path":       r.Path,
		"backup":     r.Backup,
		"mode":       strconv.FormatUint(uint64(r.Mode.Perm()), 8),
		"nameserver": r.Nameserver,
	}
	if r.Link != "" {
		d["link"] = r.Link
	}
	if r.Absent {
		d["absent"] = "true"
	}
	return d
}

func recordFromData(name string, d map[string]string) (fileRecord, error) {
	r := fileRecord{Path: d["path"], Backup: d["backup"], Link: d["link"], Nameserver: d["nameserver"], Absent: d["absent"] == "true", Mode: 0o644}
	if r.Path == "" {
		r.Path = name
	}
	if r.Path == "" || r.Backup == "" {
		return r, fmt.Errorf("resolvconf journal entry %q: missing path or backup", name)
	}
	if mode, err := strconv.ParseUint(d["mode"], 8, 32); err == nil {
		r.Mode = fs.FileMode(mode).Perm()
	}
	return r, nil
}

// fileState is file mode's live state.
type fileState struct {
	rec  fileRecord // the backup holds the bytes Close restores
	ours []byte     // what we last wrote
}

// snapshot is resolv.conf as found: content (through a symlink), whether
// the path exists, its symlink target if it is one, its permission bits.
type snapshot struct {
	content []byte
	exists  bool
	link    string
	perm    fs.FileMode
}

func (s snapshot) equal(o snapshot) bool {
	return s.exists == o.exists && s.link == o.link && bytes.Equal(s.content, o.content)
}

func readSnapshot(path string) (snapshot, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return snapshot{perm: 0o644}, nil
	}
	if err != nil {
		return snapshot{}, fmt.Errorf("stat resolv.conf: %w", err)
	}
	s := snapshot{exists: true, perm: fi.Mode().Perm()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if s.link, err = os.Readlink(path); err != nil {
			return snapshot{}, fmt.Errorf("read resolv.conf link: %w", err)
		}
		s.perm = 0o644
		if st, err := os.Stat(path); err == nil {
			s.perm = st.Mode().Perm()
		}
	}
	s.content, err = os.ReadFile(path)
	if err != nil && !(s.link != "" && errors.Is(err, fs.ErrNotExist)) { // dangling link: empty
		return snapshot{}, fmt.Errorf("read resolv.conf: %w", err)
	}
	return s, nil
}

// startFile captures and backs up the original, journals it and writes
// ours, then starts the repair watcher. Called with mu held.
func (m *Manager) startFile() error {
	ns := m.cfg.Nameserver
	rec := fileRecord{
		Path:       m.cfg.ResolvConf,
		Backup:     filepath.Join(m.cfg.StateDir, backupName),
		Nameserver: ns.String(),
	}
	orig, rec, err := captureOriginal(rec, ns)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := writeBackup(rec, orig); err != nil {
		return err
	}
	m.plat.file = &fileState{rec: rec} // from here Close restores
	m.orig = withoutSelf(parseResolvConf(orig), ns)
	if j := m.cfg.Journal; j != nil {
		if err := j.Record(KindResolvConf, rec.Path, rec.data()); err != nil {
			return fmt.Errorf("journal resolv.conf: %w", err)
		}
	}
	if err := m.writeOurs(); err != nil {
		return err
	}
	m.startWatcher(m.checkFile)
	return nil
}

// captureOriginal returns the host's original resolv.conf bytes and the
// record to restore them. A backup left by a crashed run is the original
// while the file is still ours; if the host replaced our file since, the
// current file is newer and wins.
func captureOriginal(rec fileRecord, ns netip.Addr) ([]byte, fileRecord, error) {
	cur, err := readSnapshot(rec.Path)
	if err != nil {
		return nil, rec, err
	}
	if prev, err := os.ReadFile(rec.Backup); err == nil && (!cur.exists || isOurs(cur.content, ns)) {
		if meta, err := readMeta(rec.Backup); err == nil {
			rec.Link, rec.Mode, rec.Absent = meta.Link, meta.Mode, meta.Absent
		} else {
			rec.Mode = 0o644
		}
		return prev, rec, nil
	}
	if cur.exists && isOurs(cur.content, ns) {
		return nil, rec, fmt.Errorf("capture original %s: %w", rec.Path, ErrOwnFile)
	}
	rec.Link, rec.Mode, rec.Absent = cur.link, cur.perm, !cur.exists
	return cur.content, rec, nil
}

func readMeta(backup string) (fileRecord, error) {
	var r fileRecord
	b, err := os.ReadFile(backup + metaSuffix)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// writeBackup stores the meta record, then the original bytes (0600,
// fsynced, by rename so a backup is never torn). The backup's existence
// means "there is something to restore", so it is written last.
func writeBackup(rec fileRecord, content []byte) error {
	meta, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode backup record: %w", err)
	}
	if err := writeFile(rec.Backup+metaSuffix, meta, 0o600); err != nil {
		return fmt.Errorf("write backup record: %w", err)
	}
	if err := writeFile(rec.Backup, content, 0o600); err != nil {
		return fmt.Errorf("write backup: %w", err)
	}
	return nil
}

// writeOurs renders and writes our resolv.conf. Called with mu held.
func (m *Manager) writeOurs() error {
	f := m.plat.file
	b := render(m.cfg.Nameserver, m.search, m.orig, f.rec.Backup)
	if err := writeFile(f.rec.Path, b, f.rec.Mode); err != nil {
		return fmt.Errorf("write resolv.conf: %w", err)
	}
	f.ours = b
	return nil
}

// rewriteOurs applies changed settings; identical settings write nothing.
func (m *Manager) rewriteOurs() error {
	f := m.plat.file
	if bytes.Equal(render(m.cfg.Nameserver, m.search, m.orig, f.rec.Backup), f.ours) {
		return nil
	}
	return m.writeOurs()
}

// writeFile replaces path with b atomically (temp file, fsync, rename,
// fsync dir). A rename over the target fails with EBUSY when the target is
// a bind mount (ip netns exec, containers) and with EXDEV across mounts;
// then the file is written in place. A symlink at path is replaced, never
// written through.
func writeFile(path string, b []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".petrel-resolv-*")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write temp file: %w", err)
	}
	if err := os.Rename(name, path); err != nil {
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EXDEV) {
			return writeInPlace(path, b)
		}
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return syncDir(dir)
}

// writeInPlace overwrites path's content without replacing the inode: write
// from offset 0, cut to length, fsync. O_NOFOLLOW refuses a symlink.
func writeInPlace(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open %s in place: %w", path, err)
	}
	_, err = f.WriteAt(b, 0)
	if err == nil {
		err = f.Truncate(int64(len(b)))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s in place: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}

// restoreFile puts the backup back and removes it; used by Close and by
// the crash undoer. No backup means already restored. If the file is no
// longer ours (the host replaced it while we were not watching), the
// host's newer content stays: it is what the host wants now.
func restoreFile(rec fileRecord) error {
	bk, err := os.ReadFile(rec.Backup)
	if errors.Is(err, fs.ErrNotExist) {
		return removeQuiet(rec.Backup + metaSuffix)
	}
	if err != nil {
		return fmt.Errorf("read backup: %w", err)
	}
	ns, _ := netip.ParseAddr(rec.Nameserver)
	cur, err := readSnapshot(rec.Path)
	if err != nil {
		return err
	}
	foreign := cur.exists && (cur.link != "" || !isOurs(cur.content, ns))
	switch {
	case rec.Link != "":
		if !foreign {
			err = restoreSymlink(rec.Path, rec.Link)
		}
	case rec.Absent:
		if cur.exists && !foreign {
			err = removeQuiet(rec.Path)
		}
	case cur.exists && cur.link == "" && bytes.Equal(cur.content, bk):
		// already the original
	case !foreign:
		err = writeFile(rec.Path, bk, rec.Mode)
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", rec.Path, err)
	}
	if err := removeQuiet(rec.Backup); err != nil {
		return err
	}
	if err := removeQuiet(rec.Backup + metaSuffix); err != nil {
		return err
	}
	return syncDir(filepath.Dir(rec.Backup))
}

// restoreSymlink replaces path with a symlink to target (by rename).
func restoreSymlink(path, target string) error {
	tmp := path + ".petrel-link"
	if err := removeQuiet(tmp); err != nil {
		return err
	}
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("create symlink: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace with symlink: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func removeQuiet(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
