package feature

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
)

func TestUnsupportedError(t *testing.T) {
	u := &UnsupportedError{Feature: Routes, Need: "2 routes to install", Lacks: "policy routing", OS: "plan9"}
	want := "routes: 2 routes to install; policy routing is not supported on this platform (plan9)"
	if u.Error() != want {
		t.Errorf("Error() = %q, want %q", u.Error(), want)
	}
	if !errors.Is(fmt.Errorf("apply: %w", u), errors.ErrUnsupported) {
		t.Error("a wrapped UnsupportedError is not errors.ErrUnsupported")
	}
	if errors.Is(io.EOF, errors.ErrUnsupported) {
		t.Error("io.EOF is errors.ErrUnsupported")
	}
}

func TestSplit(t *testing.T) {
	r := Unsupported(Routes, "1 route to install", "policy routing")
	x := Unsupported(ExitNode, "an exit node is selected", "policy routing")
	other := errors.New("netlink: permission denied")
	wrapMixed := fmt.Errorf("apply: %w", errors.Join(r, other))
	for _, tc := range []struct {
		name     string
		err      error
		want     []*UnsupportedError
		wantRest error // nil = none; else errors.Is(rest, wantRest) and the same text
	}{
		{"nil", nil, nil, nil},
		{"plain error", other, nil, other},
		{"one", r, []*UnsupportedError{r}, nil},
		{"wrapped", fmt.Errorf("apply routes: %w", r), []*UnsupportedError{r}, nil},
		{"joined", errors.Join(r, x), []*UnsupportedError{r, x}, nil},
		{"joined with another error", errors.Join(r, other, x), []*UnsupportedError{r, x}, other},
		{"multi-%w", fmt.Errorf("a: %w, b: %w", x, r), []*UnsupportedError{x, r}, nil},
		{"wrapper around both", wrapMixed, []*UnsupportedError{r}, wrapMixed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rest := Split(tc.err)
			if !slices.Equal(got, tc.want) {
				t.Errorf("unsupported = %v, want %v", got, tc.want)
			}
			switch {
			case tc.wantRest == nil && rest != nil:
				t.Errorf("rest = %v, want nil", rest)
			case tc.wantRest != nil && (rest == nil || !errors.Is(rest, tc.wantRest) || rest.Error() != tc.wantRest.Error()):
				t.Errorf("rest = %v, want %v", rest, tc.wantRest)
			}
		})
	}
}
