package rows

import (
	"strconv"
	"strings"
	"testing"

	"petrel/management/model"
	"petrel/management/store/internal/codec"
)

func TestNewStatements(t *testing.T) {
	cases := []struct {
		name   string
		ph     func(int) string
		put    string // peer VALUES list
		delete string
	}{
		{"positional", func(int) string { return "?" }, "VALUES (?, ?, ?, ?, ?, ?)", "account_id = ? AND id = ?"},
		{"numbered", func(n int) string { return "$" + strconv.Itoa(n) }, "VALUES ($1, $2, $3, $4, $5, $6)", "account_id = $1 AND id = $2"},
	}
	for _, c := range cases {
		st := NewStatements(c.ph)
		for _, k := range codec.Kinds {
			if st.Load[k] == "" || st.Put[k] == "" || st.Delete[k] == "" {
				t.Errorf("%s: %s: missing statement", c.name, k)
			}
			if n := strings.Count(st.Put[k], "?"); c.name == "positional" && n != len(codec.Columns(k))+1 {
				t.Errorf("%s: %s: %d placeholders in %q", c.name, k, n, st.Put[k])
			}
		}
		if p := st.Put[model.KindPeer]; !strings.Contains(p, c.put) {
			t.Errorf("%s: put peer = %q, want %q", c.name, p, c.put)
		}
		if d := st.Delete[model.KindGroup]; !strings.HasPrefix(d, `DELETE FROM "groups" WHERE `) || !strings.HasSuffix(d, c.delete) {
			t.Errorf("%s: delete group = %q", c.name, d)
		}
	}
}
