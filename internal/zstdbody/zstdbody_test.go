package zstdbody

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// rleFrame hand-builds a zstd frame declaring fcs bytes of content (no
// declaration when fcs < 0) whose RLE blocks decode to total zero bytes:
// a bomb of any size in a few kilobytes.
func rleFrame(fcs int64, total int) []byte {
	b := []byte{0x28, 0xb5, 0x2f, 0xfd}
	if fcs >= 0 {
		b = append(b, 0xc0, 10<<3) // 8-byte content size; window 1 MiB
		b = binary.LittleEndian.AppendUint64(b, uint64(fcs))
	} else {
		b = append(b, 0x00, 10<<3) // no content size; window 1 MiB
	}
	for total > 0 {
		n := min(total, 128<<10)
		total -= n
		hdr := uint32(n)<<3 | 1<<1 // RLE block of n bytes
		if total == 0 {
			hdr |= 1 // last block
		}
		b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 0)
	}
	return b
}

// allocated returns the bytes fn allocates (the process is otherwise idle
// in these tests).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestRoundTrip(t *testing.T) {
	enc := NewEncoder()
	dec, err := NewDecoder(0)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	r := rand.New(rand.NewPCG(1, 2))
	var text bytes.Buffer // like a map: random keys among repetitive text
	for i := 0; text.Len() < 5<<20; i++ {
		key := make([]byte, 32)
		for j := range key {
			key[j] = byte(r.Uint32())
		}
		fmt.Fprintf(&text, "peer %s 100.64.%d.%d/32 host-%d.petrel.internal\n", base64.StdEncoding.EncodeToString(key), i>>8&255, i&255, i)
	}
	for _, n := range []int{MinSize, 4 << 10, 1 << 20, 5 << 20} {
		src := text.Bytes()[:n]
		c, ok := enc.Compress(src)
		if !ok || n >= 4<<10 && len(c) >= n*3/4 {
			t.Errorf("%d bytes compress to %d (%v)", n, len(c), ok)
		}
		out, err := dec.Decode(c)
		if err != nil || !bytes.Equal(out, src) {
			t.Fatalf("%d bytes: round trip: %v", n, err)
		}
	}
	// The hand-built frames decode when honest (so the bombs below test
	// the limits, not a malformed frame).
	out, err := dec.Decode(rleFrame(300<<10, 300<<10))
	if err != nil || len(out) != 300<<10 {
		t.Fatalf("honest RLE frame: %d bytes, %v", len(out), err)
	}
}

// Bombs are refused with ErrTooLarge (or ErrCorrupt for a frame that hides
// its size) without allocating what they would decode to.
func TestBombsRefusedWithoutAllocating(t *testing.T) {
	const limit = 1 << 20
	dec, err := NewDecoder(limit)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	honest, _ := NewEncoder().Compress(bytes.Repeat([]byte("petrel "), 1000))
	cases := []struct {
		name string
		body []byte
		want error
	}{
		{"declares 1 GiB", rleFrame(1<<30, 1<<30), ErrTooLarge},
		{"declares 1 KiB, holds 256 MiB", rleFrame(1<<10, 256<<20), ErrTooLarge},
		{"hides its size, holds 256 MiB", rleFrame(-1, 256<<20), ErrCorrupt},
		{"honest frame then 256 MiB frame", append(append([]byte(nil), honest...), rleFrame(-1, 256<<20)...), ErrTooLarge},
		{"declares the limit, holds 256 MiB", rleFrame(limit, 256<<20), ErrTooLarge},
		{"garbage", []byte("not zstd at all, just bytes"), ErrCorrupt},
		{"truncated", honest[:len(honest)/2], ErrCorrupt},
		{"empty", nil, ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() { _, err = dec.Decode(tc.body) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if n > 4*limit {
				t.Fatalf("allocated %d bytes decoding a refused body (limit %d)", n, limit)
			}
		})
	}
}

// Bodies too small or that do not shrink are left alone.
func TestCompressDeclines(t *testing.T) {
	enc := NewEncoder()
	if _, ok := enc.Compress(bytes.Repeat([]byte("a"), MinSize-1)); ok {
		t.Error("a body under MinSize was compressed")
	}
	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(r.Uint32())
	}
	if c, ok := enc.Compress(random); ok {
		t.Errorf("random bytes compressed to %d of %d", len(c), len(random))
	}
}

func TestDecoderCapDefaultsToMaxDecoded(t *testing.T) {
	for _, max := range []int{0, -1, MaxDecoded + 1} {
		d, err := NewDecoder(max)
		if err != nil {
			t.Fatal(err)
		}
		if d.max != MaxDecoded {
			t.Errorf("NewDecoder(%d) caps at %d", max, d.max)
		}
		d.Close()
	}
	d, _ := NewDecoder(0)
	defer d.Close()
	if _, err := d.Decode(rleFrame(MaxDecoded+1, 1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a body declaring MaxDecoded+1 bytes: %v", err)
	}
}

// FuzzDecode: arbitrary bytes never panic, never decode past the cap, and
// fail only with ErrTooLarge or ErrCorrupt.
func FuzzDecode(f *testing.F) {
	seed, _ := NewEncoder().Compress(bytes.Repeat([]byte("peer "), 200))
	f.Add(seed)
	f.Add(rleFrame(4096, 4096))
	f.Add(rleFrame(10, 1<<20))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	dec, err := NewDecoder(64 << 10)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := dec.Decode(body)
		if err != nil && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unexpected error: %v", err)
		}
		if len(out) > 64<<10 {
			t.Fatalf("decoded %d bytes past the cap", len(out))
		}
	})
}
