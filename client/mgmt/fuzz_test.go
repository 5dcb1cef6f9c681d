package mgmt

import (
	"errors"
	"testing"

	"petrel/internal/keys"
	"petrel/internal/seal"
)

// FuzzOpenSyncResponse feeds arbitrary bytes into the decode path of Sync
// messages: raw (mode 0) or correctly sealed by the server (mode 1, so the
// protobuf decoder sees arbitrary plaintext). It must never panic, and a
// failure is always ErrBadResponse.
func FuzzOpenSyncResponse(f *testing.F) {
	var server, agent keys.Private
	server[0], agent[0] = 1, 2
	box := seal.Precompute(server.Public(), agent)
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0x08, 0x05, 0x12, 0x00}, uint8(1))
	f.Add([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f}, uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		if mode%2 == 1 {
			sealed, err := seal.Seal(body, agent.Public(), server)
			if err != nil {
				t.Fatal(err)
			}
			body = sealed
		}
		resp, err := openSyncResponse(box, body)
		if err != nil && !errors.Is(err, ErrBadResponse) {
			t.Fatalf("unexpected error type: %v", err)
		}
		if err == nil && resp == nil {
			t.Fatal("nil response without error")
		}
	})
}
