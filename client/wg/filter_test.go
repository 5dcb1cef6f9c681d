package wg

import (
	"os"
	"reflect"
	"testing"

	"golang.zx2c4.com/wireguard/tun"
)

// fakeTUN returns a fixed batch on Read and records Writes.
type fakeTUN struct {
	reads   [][]byte // what Read returns (nil entries: empty slots)
	written [][]byte
}

func (d *fakeTUN) File() *os.File           { return nil }
func (d *fakeTUN) MTU() (int, error)        { return 1280, nil }
func (d *fakeTUN) Name() (string, error)    { return "fake", nil }
func (d *fakeTUN) Events() <-chan tun.Event { return nil }
func (d *fakeTUN) Close() error             { return nil }
func (d *fakeTUN) BatchSize() int           { return 128 }

func (d *fakeTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	for i, p := range d.reads {
		sizes[i] = copy(bufs[i][offset:], p)
	}
	return len(d.reads), nil
}

func (d *fakeTUN) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		d.written = append(d.written, append([]byte(nil), b[offset:]...))
	}
	return len(bufs), nil
}

// byteFilter passes packets whose first byte is 'y'; it records what it
// was asked about, one by one or in batches.
type byteFilter struct{ seen []string }

func (f *byteFilter) judge(p []byte) bool {
	f.seen = append(f.seen, string(p))
	return len(p) > 0 && p[0] == 'y'
}
func (f *byteFilter) Inbound(p []byte) bool  { return f.judge(p) }
func (f *byteFilter) Outbound(p []byte) bool { return f.judge(p) }

type batchByteFilter struct {
	byteFilter
	batches int
}

func (f *batchByteFilter) InboundBatch(pkts [][]byte, pass []bool) {
	f.batches++
	for i, p := range pkts {
		pass[i] = f.judge(p)
	}
}
func (f *batchByteFilter) OutboundBatch(pkts [][]byte, pass []bool) { f.InboundBatch(pkts, pass) }

// Both kinds of filter give the same result on Read and Write; empty slots
// are never shown to the filter; the batch filter gets whole batches.
func TestFilterTUNBatchAndSingle(t *testing.T) {
	const off = 16
	for _, tc := range []struct {
		name  string
		f     PacketFilter
		batch *batchByteFilter
	}{
		{"single", &byteFilter{}, nil},
		{"batch", nil, &batchByteFilter{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			seen := func() []string { return tc.f.(*byteFilter).seen }
			if tc.batch != nil {
				f = tc.batch
				seen = func() []string { return tc.batch.seen }
			}
			dev := &fakeTUN{reads: [][]byte{[]byte("y1"), nil, []byte("n2"), []byte("y3")}}
			ft := newFilterTUN(dev, f)
			bufs := make([][]byte, 4)
			for i := range bufs {
				bufs[i] = make([]byte, 64)
			}
			sizes := make([]int, 4)
			n, err := ft.Read(bufs, sizes, off)
			if err != nil || n != 4 {
				t.Fatalf("read %d %v", n, err)
			}
			if want := []int{2, 0, 0, 2}; !reflect.DeepEqual(sizes, want) {
				t.Fatalf("sizes %v, want %v", sizes, want)
			}
			if want := []string{"y1", "n2", "y3"}; !reflect.DeepEqual(seen(), want) {
				t.Fatalf("filter saw %q, want %q (no empty slot)", seen(), want)
			}
			in := [][]byte{[]byte("................y4"), []byte("................n5"), []byte("................y6")}
			if n, err := ft.Write(in, off); err != nil || n != 3 {
				t.Fatalf("write %d %v", n, err)
			}
			if got := dev.written; len(got) != 2 || string(got[0]) != "y4" || string(got[1]) != "y6" {
				t.Fatalf("written %q", got)
			}
			if tc.batch != nil && tc.batch.batches != 2 {
				t.Fatalf("%d batch calls, want 2", tc.batch.batches)
			}
		})
	}
}
