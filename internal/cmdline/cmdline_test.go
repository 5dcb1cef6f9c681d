package cmdline

import (
	"errors"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

type usage struct{ error }

func (usage) ExitCode() int { return ExitUsage }

// tree is a small command tree with every kind of misuse to make.
func tree() *cobra.Command {
	root := &cobra.Command{Use: "prog", SilenceErrors: true, SilenceUsage: true}
	one := &cobra.Command{Use: "one ARG", Args: cobra.ExactArgs(1), RunE: func(*cobra.Command, []string) error { return nil }}
	one.Flags().Int("n", 0, "a number")
	req := &cobra.Command{Use: "req", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	req.Flags().String("must", "", "required")
	_ = req.MarkFlagRequired("must")
	pair := &cobra.Command{Use: "pair", RunE: func(*cobra.Command, []string) error { return nil }}
	pair.Flags().Bool("a", false, "")
	pair.Flags().Bool("b", false, "")
	pair.MarkFlagsMutuallyExclusive("a", "b")
	fail := &cobra.Command{Use: "fail", RunE: func(*cobra.Command, []string) error { return errors.New("broke") }}
	group := &cobra.Command{Use: "group"}
	group.AddCommand(&cobra.Command{Use: "leaf", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }})
	root.AddCommand(one, req, pair, fail, group)
	EnforceUsage(root, func(err error) error { return usage{err} })
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	return root
}

func TestEnforceUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"one", "x"}, 0, ""},
		{[]string{"group", "leaf"}, 0, ""},
		{[]string{"completion", "bash"}, 0, ""},
		{[]string{"--help"}, 0, ""},
		{[]string{"req", "--must", "v"}, 0, ""},
		{[]string{"fail"}, ExitFailure, "broke"},
		{[]string{}, ExitUsage, "prog needs a command"},
		{[]string{"bogus"}, ExitUsage, `unknown command "bogus" for "prog"`},
		{[]string{"grop"}, ExitUsage, "did you mean group?"},
		{[]string{"--bogus"}, ExitUsage, "unknown flag: --bogus"},
		{[]string{"one"}, ExitUsage, "accepts 1 arg(s), received 0 (usage: prog one ARG"},
		{[]string{"one", "a", "b"}, ExitUsage, "received 2"},
		{[]string{"one", "x", "--n", "many"}, ExitUsage, `invalid argument "many"`},
		{[]string{"req"}, ExitUsage, `"must" not set`},
		{[]string{"req", "extra", "--must", "v"}, ExitUsage, `unknown command "extra"`},
		{[]string{"pair", "--a", "--b"}, ExitUsage, "if any flags in the group [a b] are set none of the others can be"},
		{[]string{"group"}, ExitUsage, "prog group needs a command: leaf"},
		{[]string{"group", "leef"}, ExitUsage, `unknown command "leef" for "prog group"`},
		{[]string{"completion"}, ExitUsage, "prog completion needs a command"},
		{[]string{"completion", "tcsh"}, ExitUsage, `unknown command "tcsh"`},
	} {
		root := tree()
		root.SetArgs(tc.args)
		err := root.Execute()
		if got := ExitCode(err); got != tc.code || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("%q: exit %d (%v), want %d with %q", tc.args, got, err, tc.code, tc.msg)
		}
	}
}

func TestBuildString(t *testing.T) {
	vcs := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "112304b04a53d2e0f1c9a1b2c3d4e5f60718293a"},
		{Key: "vcs.time", Value: "2026-12-07T02:47:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	for _, tc := range []struct {
		b    Build
		bi   *debug.BuildInfo
		want string
	}{
		{Build{Version: "0.4.0"}, vcs, "0.4.0 (commit 112304b04a53-dirty, built 2026-12-07, go1.26.8)"},
		{Build{Version: "0.4.0", Commit: "abc", Date: "2027-01-02"}, vcs, "0.4.0 (commit abc, built 2027-01-02, go1.26.8)"},
		{Build{Version: "dev"}, &debug.BuildInfo{}, "dev (commit unknown, go1.26.8)"},
		{Build{}, nil, "dev (commit unknown, go1.26.8)"},
		{Build{Version: "1.0", Commit: "abc"}, nil, "1.0 (commit abc, go1.26.8)"},
	} {
		if got := tc.b.format(tc.bi, "go1.26.8"); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.b, got, tc.want)
		}
	}
}

func TestColorEnabled(t *testing.T) {
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
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var sb strings.Builder
	for name, out := range map[string]io.Writer{"pipe": w, "null device": null, "buffer": &sb} {
		if ColorEnabled(out, env("TERM", "xterm")) {
			t.Errorf("colour on a %s", name)
		}
	}
	if p := (Palette{}); p.Red("x") != "x" {
		t.Errorf("off palette painted: %q", p.Red("x"))
	}
	if p := (Palette{On: true}); p.Green("ok") != "\x1b[32mok\x1b[0m" {
		t.Errorf("palette: %q", p.Green("ok"))
	}
	// The terminal half (and NO_COLOR, TERM=dumb on a terminal) is tested
	// through a pseudo-terminal in cmd/petrel.
}
