package engine

import (
	"strings"
	"testing"

	"petrel/internal/keys"
)

// A WireGuard port outside 0..65535 is refused, not narrowed to 16 bits
// (70000 would otherwise bind 4464).
func TestNewRefusesWGPortOutOfRange(t *testing.T) {
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{-1, 65536, 70000} {
		if _, err := New(Config{Key: k, WGPort: port}); err == nil || !strings.Contains(err.Error(), "0..65535") {
			t.Errorf("port %d: %v", port, err)
		}
	}
	for _, port := range []int{0, 51820, 65535} {
		if _, err := New(Config{Key: k, WGPort: port}); err != nil {
			t.Errorf("port %d: %v", port, err)
		}
	}
}
