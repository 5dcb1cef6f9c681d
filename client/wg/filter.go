package wg

import (
	"sync"

	"golang.zx2c4.com/wireguard/tun"
)

// filterTUN applies a PacketFilter on the TUN read (outbound) and write
// (inbound) paths. Read is called by one goroutine; Write by several.
type filterTUN struct {
	tun.Device
	f       PacketFilter
	scratch sync.Pool // *[][]byte
}

func newFilterTUN(d tun.Device, f PacketFilter) *filterTUN {
	t := &filterTUN{Device: d, f: f}
	t.scratch.New = func() any { s := make([][]byte, 0, 128); return &s }
	return t
}

func (t *filterTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.Device.Read(bufs, sizes, offset)
	for i := 0; i < n; i++ {
		if sizes[i] > 0 && !t.f.Outbound(bufs[i][offset:offset+sizes[i]]) {
			sizes[i] = 0 // wireguard-go skips empty slots
		}
	}
	return n, err
}

func (t *filterTUN) Write(bufs [][]byte, offset int) (int, error) {
	sp := t.scratch.Get().(*[][]byte)
	keep := (*sp)[:0]
	for _, b := range bufs {
		if t.f.Inbound(b[offset:]) {
			keep = append(keep, b)
		}
	}
	var err error
	if len(keep) > 0 {
		_, err = t.Device.Write(keep, offset)
	}
	clear(keep)
	*sp = keep[:0]
	t.scratch.Put(sp)
	if err != nil {
		return 0, err
	}
	return len(bufs), nil
}
