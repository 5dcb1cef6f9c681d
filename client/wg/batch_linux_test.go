//go:build linux

package wg

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func offloadCounts(b *Bind) (gsoSent, groRecv uint64) {
	s := b.sess.Load()
	if s == nil {
		return 0, 0
	}
	return s.io.gsoSent.Load(), s.io.groRecv.Load()
}

// TestCoalesceLayout checks how one Send batch is cut into datagrams.
func TestCoalesceLayout(t *testing.T) {
	rep := func(n, size int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = size
		}
		return s
	}
	type dgram struct{ segs, size int } // size: first segment (the GSO size)
	tests := []struct {
		name  string
		sizes []int
		gso   bool
		max   int
		want  []dgram
	}{
		{"single", []int{1312}, true, maxPayload4, []dgram{{1, 1312}}},
		{"run with short tail", []int{1312, 1312, 1312, 90}, true, maxPayload4, []dgram{{4, 1312}}},
		{"short packet ends run", []int{1312, 90, 1312, 1312}, true, maxPayload4, []dgram{{2, 1312}, {2, 1312}}},
		{"larger packet starts a run", []int{500, 500, 1312, 1312}, true, maxPayload4, []dgram{{2, 500}, {2, 1312}}},
		{"no gso", []int{1312, 1312, 1312}, false, maxPayload4, []dgram{{1, 1312}, {1, 1312}, {1, 1312}}},
		{"64 segments max", rep(130, 100), true, maxPayload4, []dgram{{64, 100}, {64, 100}, {2, 100}}},
		{"payload limit v4", rep(60, 1400), true, maxPayload4, []dgram{{46, 1400}, {14, 1400}}},
		{"payload limit v6", rep(60, 1400), true, maxPayload6, []dgram{{46, 1400}, {14, 1400}}},
		{"payload limit exact", rep(3, 20000), true, 40000, []dgram{{2, 20000}, {1, 20000}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			io := &sockIO{v6: false}
			st := newSendState(io)
			bufs := make([][]byte, len(tc.sizes))
			for i, n := range tc.sizes {
				bufs[i] = make([]byte, n)
			}
			st.grow(len(bufs))
			if err := st.setDst(netip.MustParseAddrPort("127.0.0.1:9")); err != nil {
				t.Fatal(err)
			}
			nh := st.build(bufs, 0, tc.gso, tc.max)
			var got []dgram
			total := 0
			for i, h := range st.hdrs[:nh] {
				segs := int(h.hdr.Iovlen)
				if st.first[i] != total {
					t.Fatalf("header %d starts at %d, want %d", i, st.first[i], total)
				}
				hasCtl := h.hdr.Controllen > 0
				if hasCtl != (segs > 1) {
					t.Fatalf("header %d: %d segments, control %v", i, segs, hasCtl)
				}
				got = append(got, dgram{segs, tc.sizes[total]})
				total += segs
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestGSOFallbackOnEIO fails the first segmented send with EIO (a device
// without checksum offload): the bind must switch GSO off, resend
// unsegmented, and deliver every packet.
func TestGSOFallbackOnEIO(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tx := NewBind(BindConfig{ListenAddr: lo, Logger: testLogger(t)})
	rx := NewBind(BindConfig{ListenAddr: lo, Logger: testLogger(t)})
	if _, _, err := tx.Open(0); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if gso, _ := tx.Offloads(); !gso {
		t.Skip("kernel without UDP GSO: nothing to fall back from")
	}
	fns, _, err := rx.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	sink := startSink(t, fns[0])
	defer func() { rx.Close(); <-sink.done }()
	var faults atomic.Int32
	tx.sess.Load().io.fault = func(hdrs []mmsghdr) syscall.Errno {
		for _, h := range hdrs {
			if h.hdr.Iovlen > 1 {
				faults.Add(1)
				return unix.EIO
			}
		}
		return 0
	}
	ep, err := tx.ParseEndpoint(rx.LocalAddr().AddrPort().String())
	if err != nil {
		t.Fatal(err)
	}
	var bufs [][]byte
	for i := range 20 {
		size := 1312
		if i == 0 {
			size = 148 // a lone first packet goes out before the failing run
		}
		bufs = append(bufs, testPacket(uint64(i), size))
	}
	if err := tx.Send(bufs, ep); err != nil {
		t.Fatalf("send: %v", err)
	}
	sink.waitCount(t, len(bufs))
	if gso, _ := tx.Offloads(); gso {
		t.Fatal("GSO still on after EIO")
	}
	if faults.Load() != 1 {
		t.Fatalf("%d faults, want 1", faults.Load())
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.dups != 0 {
		t.Fatalf("%d duplicates after the resend", sink.dups)
	}
}
