package migrate

import (
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	f := func(names ...string) fstest.MapFS {
		m := fstest.MapFS{}
		for _, n := range names {
			m["m/"+n] = &fstest.MapFile{Data: []byte("-- " + n)}
		}
		return m
	}
	cases := []struct {
		name   string
		fs     fstest.MapFS
		latest int
		ok     bool
	}{
		{"ordered", f("0002_b.sql", "0001_a.sql", "README"), 2, true},
		{"gap", f("0001_a.sql", "0003_c.sql"), 0, false},
		{"duplicate", f("0001_a.sql", "0001_b.sql"), 0, false},
		{"bad name", f("init.sql"), 0, false},
		{"zero", f("0000_a.sql"), 0, false},
		{"empty", fstest.MapFS{"m/x.txt": &fstest.MapFile{}}, 0, false},
	}
	for _, c := range cases {
		ms, err := Load(c.fs, "m")
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v", c.name, err)
			continue
		}
		if c.ok && (Latest(ms) != c.latest || ms[0].SQL != "-- 0001_a.sql") {
			t.Errorf("%s: latest %d, first %q", c.name, Latest(ms), ms[0].SQL)
		}
	}
}
