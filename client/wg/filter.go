package wg

import (
	"sync"

	"golang.zx2c4.com/wireguard/tun"
)

// BatchPacketFilter is a PacketFilter that can also judge a whole batch at
// once (the firewall shares work between consecutive packets of one flow).
// pass[i] says whether pkts[i] may pass; len(pass) >= len(pkts). The
// verdicts must be those of calling Inbound/Outbound on each packet in
// order.
type BatchPacketFilter interface {
	PacketFilter
	InboundBatch(pkts [][]byte, pass []bool)
	OutboundBatch(pkts [][]byte, pass []bool)
}

// filterTUN applies a PacketFilter on the TUN read (outbound) and write
// (inbound) paths. Read is called by one goroutine; Write by several.
type filterTUN struct {
	tun.Device
	f  PacketFilter
	bf BatchPacketFilter // f, if it judges batches; else nil

	// Read's scratch (one reader goroutine).
	rpkts [][]byte
	ridx  []int // rpkts[j] is bufs[ridx[j]]
	rpass []bool

	scratch sync.Pool // *writeScratch
}

type writeScratch struct {
	pkts, keep [][]byte
	pass       []bool
}

func newFilterTUN(d tun.Device, f PacketFilter) *filterTUN {
	t := &filterTUN{Device: d, f: f}
	t.bf, _ = f.(BatchPacketFilter)
	t.scratch.New = func() any {
		return &writeScratch{pkts: make([][]byte, 0, 128), keep: make([][]byte, 0, 128), pass: make([]bool, 128)}
	}
	return t
}

func (t *filterTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := t.Device.Read(bufs, sizes, offset)
	if t.bf != nil && n > 1 {
		t.rpkts, t.ridx = t.rpkts[:0], t.ridx[:0]
		for i := 0; i < n; i++ {
			if sizes[i] > 0 {
				t.rpkts = append(t.rpkts, bufs[i][offset:offset+sizes[i]])
				t.ridx = append(t.ridx, i)
			}
		}
		t.rpass = grow(t.rpass, len(t.rpkts))
		t.bf.OutboundBatch(t.rpkts, t.rpass)
		for j, i := range t.ridx {
			if !t.rpass[j] {
				sizes[i] = 0 // wireguard-go skips empty slots
			}
		}
		clear(t.rpkts)
		return n, err
	}
	for i := 0; i < n; i++ {
		if sizes[i] > 0 && !t.f.Outbound(bufs[i][offset:offset+sizes[i]]) {
			sizes[i] = 0
		}
	}
	return n, err
}

func (t *filterTUN) Write(bufs [][]byte, offset int) (int, error) {
	s := t.scratch.Get().(*writeScratch)
	keep := s.keep[:0]
	if t.bf != nil && len(bufs) > 1 {
		pkts := s.pkts[:0]
		for _, b := range bufs {
			pkts = append(pkts, b[offset:])
		}
		s.pass = grow(s.pass, len(bufs))
		t.bf.InboundBatch(pkts, s.pass)
		for i, b := range bufs {
			if s.pass[i] {
				keep = append(keep, b)
			}
		}
		clear(pkts)
		s.pkts = pkts[:0]
	} else {
		for _, b := range bufs {
			if t.f.Inbound(b[offset:]) {
				keep = append(keep, b)
			}
		}
	}
	var err error
	if len(keep) > 0 {
		_, err = t.Device.Write(keep, offset)
	}
	clear(keep)
	s.keep = keep[:0]
	t.scratch.Put(s)
	if err != nil {
		return 0, err
	}
	return len(bufs), nil
}

// grow returns b with length n, reallocated if it is too short.
func grow(b []bool, n int) []bool {
	if cap(b) < n {
		return make([]bool, n)
	}
	return b[:n]
}
