package wg

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"golang.zx2c4.com/wireguard/conn"
)

// rxSink runs a bind's UDP ReceiveFunc with wireguard-go-sized buffers and
// records every delivered packet with its endpoint.
type rxSink struct {
	mu   sync.Mutex
	pkts map[uint64][]byte // by sequence number (bytes 8..16)
	eps  map[uint64]string
	dups int
	done chan struct{}
}

func startSink(t *testing.T, fn conn.ReceiveFunc) *rxSink {
	t.Helper()
	s := &rxSink{pkts: make(map[uint64][]byte), eps: make(map[uint64]string), done: make(chan struct{})}
	bufs := make([][]byte, conn.IdealBatchSize)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<16-1)
	}
	sizes := make([]int, len(bufs))
	eps := make([]conn.Endpoint, len(bufs))
	go func() {
		defer close(s.done)
		for {
			n, err := fn(bufs, sizes, eps)
			if err != nil {
				return
			}
			s.mu.Lock()
			for i := range n {
				if sizes[i] == 0 {
					continue
				}
				p := bufs[i][:sizes[i]]
				seq := binary.BigEndian.Uint64(p[8:16])
				if _, ok := s.pkts[seq]; ok {
					s.dups++
				}
				s.pkts[seq] = bytes.Clone(p)
				s.eps[seq] = eps[i].DstToString()
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *rxSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pkts)
}

// waitCount polls until the sink holds n packets (generous deadline).
func (s *rxSink) waitCount(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d packets", s.count(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testPacket is a WireGuard-data-like packet (type 4, so never STUN) of
// size n carrying seq at bytes 8..16 and a pattern derived from seq.
func testPacket(seq uint64, n int) []byte {
	p := make([]byte, n)
	p[0] = 4
	binary.BigEndian.PutUint64(p[8:16], seq)
	for i := 16; i < n; i++ {
		p[i] = byte(seq*131 + uint64(i)*7)
	}
	return p
}

// mixedSizes are batch layouts: runs of equal sizes, short tails, a size
// larger than the run before it, single packets.
var mixedSizes = [][]int{
	{1312, 1312, 1312, 1312, 1312, 700, 1312, 1312, 1312, 96, 96, 96, 1500, 1400, 1400, 33},
	{1312},
	{60, 1312, 1312},
	{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 999},
	{148, 92, 32, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312, 1312},
}

// roundTrip sends mixed batches from tx to three receivers in turn and
// checks byte-exact delivery with the sender as endpoint.
func roundTrip(t *testing.T, txCfg, rxCfg BindConfig) (tx *Bind, rxs []*Bind) {
	lo := netip.MustParseAddr("127.0.0.1")
	txCfg.ListenAddr, rxCfg.ListenAddr = lo, lo
	return roundTripTo(t, txCfg, rxCfg, lo)
}

// roundTripTo is roundTrip with the binds' listen addresses taken from the
// configs and the receivers addressed at dst (with their ports).
func roundTripTo(t *testing.T, txCfg, rxCfg BindConfig, dst netip.Addr) (tx *Bind, rxs []*Bind) {
	txCfg.Logger, rxCfg.Logger = testLogger(t), testLogger(t)
	tx = NewBind(txCfg)
	if _, _, err := tx.Open(0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Close() })
	var sinks []*rxSink
	var dsts []conn.Endpoint
	for range 3 {
		rx := NewBind(rxCfg)
		fns, _, err := rx.Open(0)
		if err != nil {
			t.Fatal(err)
		}
		s := startSink(t, fns[0])
		t.Cleanup(func() { rx.Close(); <-s.done })
		ep, err := tx.ParseEndpoint(netip.AddrPortFrom(dst, rx.LocalAddr().AddrPort().Port()).String())
		if err != nil {
			t.Fatal(err)
		}
		rxs, sinks, dsts = append(rxs, rx), append(sinks, s), append(dsts, ep)
	}
	want := make([]map[uint64][]byte, len(rxs))
	for i := range want {
		want[i] = make(map[uint64][]byte)
	}
	seq := uint64(0)
	for round := range 4 {
		for k, sizes := range mixedSizes {
			d := (round + k) % len(rxs)
			var bufs [][]byte
			for _, n := range sizes {
				p := testPacket(seq, n)
				want[d][seq] = p
				seq++
				// Like wireguard-go's buffers: spare capacity after the packet.
				bufs = append(bufs, append(make([]byte, 0, 1<<16-1), p...))
			}
			if err := tx.Send(bufs, dsts[d]); err != nil {
				t.Fatalf("send: %v", err)
			}
			// One batch in flight at a time keeps a slow (race-enabled)
			// receiver from overflowing its socket buffer.
			sinks[d].waitCount(t, len(want[d]))
		}
	}
	from := netip.AddrPortFrom(dst, tx.LocalAddr().AddrPort().Port()).String()
	for d, s := range sinks {
		s.mu.Lock()
		if s.dups != 0 || len(s.pkts) != len(want[d]) {
			t.Errorf("receiver %d: %d packets (%d dups), want %d", d, len(s.pkts), s.dups, len(want[d]))
		}
		for q, p := range want[d] {
			if !bytes.Equal(s.pkts[q], p) {
				t.Errorf("receiver %d: packet %d differs (got %d bytes, want %d)", d, q, len(s.pkts[q]), len(p))
			}
			if s.eps[q] != from {
				t.Errorf("receiver %d: packet %d from %q, want %q", d, q, s.eps[q], from)
			}
		}
		s.mu.Unlock()
	}
	return tx, rxs
}

func TestOffloadRoundTrip(t *testing.T) {
	tx, rxs := roundTrip(t, BindConfig{}, BindConfig{})
	gso, _ := tx.Offloads()
	_, gro := rxs[0].Offloads()
	sent, _ := offloadCounts(tx)
	var coalesced uint64
	for _, rx := range rxs {
		_, c := offloadCounts(rx)
		coalesced += c
	}
	t.Logf("gso=%v gro=%v segmented sends=%d coalesced receives=%d", gso, gro, sent, coalesced)
	if gso && sent == 0 {
		t.Error("GSO is on but no segmented datagram was sent")
	}
	if gso && gro && coalesced == 0 {
		t.Error("GSO and GRO are on but no coalesced datagram was received")
	}
}

func TestOffloadDisabledRoundTrip(t *testing.T) {
	tx, rxs := roundTrip(t, BindConfig{DisableOffload: true}, BindConfig{DisableOffload: true})
	for _, b := range append(rxs, tx) {
		if gso, gro := b.Offloads(); gso || gro {
			t.Fatalf("offloads on despite DisableOffload: gso=%v gro=%v", gso, gro)
		}
	}
	if sent, _ := offloadCounts(tx); sent != 0 {
		t.Fatalf("%d segmented sends with offload disabled", sent)
	}
}

// TestOffloadDualStack uses the agent's default dual-stack socket ("::"),
// sending to IPv4 (as v4-mapped addresses) and to IPv6 loopback.
func TestOffloadDualStack(t *testing.T) {
	probe := NewBind(BindConfig{})
	if _, _, err := probe.Open(0); err != nil {
		t.Skipf("no dual-stack socket: %v", err)
	}
	v6 := probe.LocalAddr().IP.To4() == nil
	probe.Close()
	if !v6 {
		t.Skip("IPv6 unavailable: the bind fell back to IPv4")
	}
	roundTripTo(t, BindConfig{}, BindConfig{}, netip.MustParseAddr("127.0.0.1"))
	roundTripTo(t, BindConfig{}, BindConfig{}, netip.MustParseAddr("::1"))
}

// Segmented sender, plain receiver (the kernel segments) and the reverse.
func TestOffloadMixedRoundTrip(t *testing.T) {
	roundTrip(t, BindConfig{}, BindConfig{DisableOffload: true})
	roundTrip(t, BindConfig{DisableOffload: true}, BindConfig{})
}

// TestSTUNDemuxUnderGRO sends STUN messages inside batches of data packets
// from the same socket, so GSO/GRO put them in one super-datagram as a
// short tail; they must still reach ICE and the data WireGuard.
func TestSTUNDemuxUnderGRO(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tx := NewBind(BindConfig{ListenAddr: lo, Logger: testLogger(t)})
	rx := NewBind(BindConfig{ListenAddr: lo, Logger: testLogger(t)})
	if _, _, err := tx.Open(0); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	fns, _, err := rx.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	ic := rx.ICEConn()
	defer ic.Close()
	sink := startSink(t, fns[0])
	defer func() { rx.Close(); <-sink.done }()
	ep, err := tx.ParseEndpoint(rx.LocalAddr().AddrPort().String())
	if err != nil {
		t.Fatal(err)
	}
	seq, data := uint64(0), 0
	var stuns [][]byte
	buf := make([]byte, 1500)
	for round := range 6 {
		req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		var bufs [][]byte
		for i := range 12 {
			if i == 5+round%3 || (round%2 == 1 && i == 11) {
				bufs = append(bufs, append(make([]byte, 0, 1<<16-1), req.Raw...))
				stuns = append(stuns, req.Raw)
				continue
			}
			bufs = append(bufs, append(make([]byte, 0, 1<<16-1), testPacket(seq, 1312)...))
			seq++
			data++
		}
		if err := tx.Send(bufs, ep); err != nil {
			t.Fatal(err)
		}
		sink.waitCount(t, data)
	}
	for _, want := range stuns {
		_ = ic.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, from, err := ic.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read STUN from ICE conn: %v", err)
		}
		if !bytes.Equal(buf[:n], want) || udpAddrPort(from) != tx.LocalAddr().AddrPort() {
			t.Fatalf("ICE got %d bytes from %v, want %d from %v", n, from, len(want), tx.LocalAddr())
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for q, p := range sink.pkts {
		if !bytes.Equal(p, testPacket(q, 1312)) {
			t.Fatalf("data packet %d corrupted", q)
		}
	}
	if st := rx.Stats(); st.ICERxDropped != 0 {
		t.Fatalf("ICE drops: %d", st.ICERxDropped)
	}
	if _, c := offloadCounts(rx); c == 0 {
		if gso, _ := tx.Offloads(); gso {
			if _, gro := rx.Offloads(); gro {
				t.Fatal("no coalesced datagram received with GSO and GRO on")
			}
		}
	}
}

// TestGROSmallReadBatches reads with fewer buffers than a super-datagram
// has segments: the rest must come out on the following calls, in order.
func TestGROSmallReadBatches(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	tx := NewBind(BindConfig{ListenAddr: lo, Logger: testLogger(t)})
	rx := NewBind(BindConfig{ListenAddr: lo, Logger: testLogger(t)})
	if _, _, err := tx.Open(0); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	fns, _, err := rx.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ep, err := tx.ParseEndpoint(rx.LocalAddr().AddrPort().String())
	if err != nil {
		t.Fatal(err)
	}
	var bufs [][]byte
	for i := range 40 {
		bufs = append(bufs, testPacket(uint64(i), 1312))
	}
	if err := tx.Send(bufs, ep); err != nil {
		t.Fatal(err)
	}
	in := [][]byte{make([]byte, 2000), make([]byte, 2000), make([]byte, 2000)}
	sizes := make([]int, len(in))
	eps := make([]conn.Endpoint, len(in))
	next := uint64(0)
	for next < 40 {
		n, err := fns[0](in, sizes, eps)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if sizes[i] == 0 {
				continue
			}
			if !bytes.Equal(in[i][:sizes[i]], testPacket(next, 1312)) {
				t.Fatalf("packet %d: got seq %d", next, binary.BigEndian.Uint64(in[i][8:16]))
			}
			next++
		}
	}
}
