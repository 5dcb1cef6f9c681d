package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Entry is one change the agent made to the host, recorded before it is
// made so that a crashed agent's leftovers can be undone.
type Entry struct {
	Kind string            `json:"kind"` // "link", "route", "rule", "resolvconf", ...
	Name string            `json:"name"`
	Data map[string]string `json:"data,omitempty"`
}

// Undoer reverts one journal entry. It must treat "already gone" as success.
type Undoer func(Entry) error

// Journal is an append-only, fsynced JSON-lines file of host changes.
// Safe for concurrent use.
type Journal struct {
	mu   sync.Mutex
	path string
}

// OpenJournal returns the journal at path (the file is created on first Record).
func OpenJournal(path string) *Journal { return &Journal{path: path} }

// Record appends e and fsyncs before returning.
func (j *Journal) Record(e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode journal entry: %w", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	return nil
}

// Entries returns the recorded entries in order. A torn last line (crash
// during a write) is ignored.
func (j *Journal) Entries() ([]Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.entriesLocked()
}

func (j *Journal) entriesLocked() ([]Entry, error) {
	b, err := os.ReadFile(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e Entry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Kind != "" {
			out = append(out, e)
		}
	}
	return out, nil
}

// Replay undoes every entry in reverse order with the undoer registered for
// its kind, then clears the journal. Entries whose undo failed are kept and
// the errors are joined; unknown kinds are kept and reported.
func (j *Journal) Replay(undo map[string]Undoer) (undone int, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	entries, err := j.entriesLocked()
	if err != nil {
		return 0, err
	}
	var keep []Entry
	var errs []error
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		fn, ok := undo[e.Kind]
		if !ok {
			errs = append(errs, fmt.Errorf("no undo for %s %q", e.Kind, e.Name))
			keep = append(keep, e)
			continue
		}
		if uerr := fn(e); uerr != nil {
			errs = append(errs, fmt.Errorf("undo %s %q: %w", e.Kind, e.Name, uerr))
			keep = append(keep, e)
			continue
		}
		undone++
	}
	if len(keep) == 0 {
		if rerr := os.Remove(j.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove journal: %w", rerr))
		}
		return undone, errors.Join(errs...)
	}
	var buf bytes.Buffer
	for i := len(keep) - 1; i >= 0; i-- {
		b, _ := json.Marshal(keep[i])
		buf.Write(append(b, '\n'))
	}
	if werr := os.WriteFile(j.path, buf.Bytes(), 0o600); werr != nil {
		errs = append(errs, fmt.Errorf("rewrite journal: %w", werr))
	}
	return undone, errors.Join(errs...)
}

// recorder adapts a Journal to engine.Recorder.
type recorder struct{ j *Journal }

func (r recorder) Record(kind, name string, data map[string]string) error {
	return r.j.Record(Entry{Kind: kind, Name: name, Data: data})
}
