package mgmt

import (
	"errors"
	"testing"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/internal/zstdbody"
	"petrel/proto/managementpb"
)

// FuzzOpenSyncResponse feeds arbitrary bytes into the decode path of Sync
// messages: raw (mode 0), correctly sealed by the server (mode 1, so the
// protobuf decoder sees arbitrary plaintext), sealed and marked compressed
// (mode 2, so the zstd decoder sees arbitrary bytes) or sealed, really
// compressed and marked so (mode 3, the protobuf decoder sees arbitrary
// plaintext through decompression). It must never panic, and a failure is
// always ErrBadResponse.
func FuzzOpenSyncResponse(f *testing.F) {
	var server, agent keys.Private
	server[0], agent[0] = 1, 2
	box := seal.Precompute(server.Public(), agent)
	dec, err := zstdbody.NewDecoder(1 << 20)
	if err != nil {
		f.Fatal(err)
	}
	enc := zstdbody.NewEncoder()
	f.Add([]byte{}, uint8(0))
	f.Add([]byte{0x08, 0x05, 0x12, 0x00}, uint8(1))
	f.Add([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0x0f}, uint8(1))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x04, 0x21, 0x00, 0x00, 0x08, 0x12, 0x00}, uint8(2))
	f.Add(append([]byte{0x08, 0x05, 0x12, 0x00}, make([]byte, 600)...), uint8(3))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		m := &managementpb.EncryptedMessage{Body: body}
		if mode%4 == 3 {
			if c, ok := enc.Compress(body); ok {
				body = c
			}
		}
		if mode%4 != 0 {
			sealed, err := seal.Seal(body, agent.Public(), server)
			if err != nil {
				t.Fatal(err)
			}
			m.Body = sealed
		}
		if mode%4 >= 2 {
			m.Compression = managementpb.Compression_COMPRESSION_ZSTD
		}
		resp, err := openSyncResponse(box, dec, m)
		if err != nil && !errors.Is(err, ErrBadResponse) {
			t.Fatalf("unexpected error type: %v", err)
		}
		if err == nil && resp == nil {
			t.Fatal("nil response without error")
		}
	})
}
