package main

import (
	"bytes"
	"os"
	"testing"
)

// Colour only on a terminal, and never with NO_COLOR or TERM=dumb.
func TestUseColor(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	tty, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0) // a character device, as a terminal is
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	regular, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer regular.Close()
	for _, tc := range []struct {
		name string
		w    any
		env  func(string) string
		want bool
	}{
		{"char device", tty, env(), true},
		{"NO_COLOR", tty, env("NO_COLOR", "1"), false},
		{"TERM=dumb", tty, env("TERM", "dumb"), false},
		{"regular file", regular, env(), false},
		{"buffer", &bytes.Buffer{}, env(), false},
	} {
		w := tc.w.(interface{ Write([]byte) (int, error) })
		if got := useColor(w, tc.env); got != tc.want {
			t.Errorf("%s: useColor = %v", tc.name, got)
		}
	}
}
