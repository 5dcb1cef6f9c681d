package migrate

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"petrel/management/store"
)

func TestApply(t *testing.T) {
	ms := []Migration{{1, "0001_a.sql", "A"}, {2, "0002_b.sql", "B"}}
	cases := []struct {
		name    string
		cur     int
		wantRun []string
		wantErr error
	}{
		{"fresh", 0, []string{"create", "A", "record 1", "B", "record 2"}, nil},
		{"one behind", 1, []string{"create", "B", "record 2"}, nil},
		{"current", 2, []string{"create"}, nil},
		{"newer", 3, []string{"create"}, store.ErrSchemaNewer},
	}
	for _, c := range cases {
		var ran []string
		tx := Tx{
			Exec: func(q string, args ...any) error {
				if q == "record" {
					q = "record " + string(rune('0'+args[0].(int)))
				}
				ran = append(ran, q)
				return nil
			},
			QueryInt: func(q string) (int, error) {
				if q != VersionQuery {
					t.Errorf("%s: query %q", c.name, q)
				}
				return c.cur, nil
			},
		}
		err := Apply(tx, "create", "record", ms, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.wantErr)
		}
		if c.wantErr != nil {
			const want = "database schema version 3 is newer than this petrel-server supports (2); upgrade petrel-server"
			if err == nil || err.Error() != want {
				t.Errorf("%s: message %q, want %q", c.name, err, want)
			}
		}
		if len(ran) != len(c.wantRun) {
			t.Errorf("%s: ran %q, want %q", c.name, ran, c.wantRun)
			continue
		}
		for i := range ran {
			if ran[i] != c.wantRun[i] {
				t.Errorf("%s: ran %q, want %q", c.name, ran, c.wantRun)
				break
			}
		}
	}
}
