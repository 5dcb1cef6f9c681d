package signal

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
)

func envFrom(from keys.Public, to keys.Public, body int) *signalpb.Envelope {
	return &signalpb.Envelope{To: to[:], From: from[:], Id: 1, Body: make([]byte, body)}
}

// TestQueueLimits: one sender fills at most its share of a recipient's
// queue (items and bytes), all senders together at most the queue, and the
// recipient's own control items still fit when envelopes fill it.
func TestQueueLimits(t *testing.T) {
	to := fuzzKey(9).Public()
	senders := []keys.Public{fuzzKey(1).Public(), fuzzKey(2).Public(), fuzzKey(3).Public(), fuzzKey(4).Public(), fuzzKey(5).Public()}

	t.Run("items", func(t *testing.T) {
		q := newQueue(16, 1<<20)
		n := 0
		for q.pushEnvelope(envFrom(senders[0], to, 10), senders[0]) {
			n++
		}
		if n != 16/shareDiv {
			t.Fatalf("one sender queued %d envelopes, share is %d", n, 16/shareDiv)
		}
		for _, s := range senders[1:] {
			for q.pushEnvelope(envFrom(s, to, 10), s) {
			}
		}
		if items, _ := q.load(); items != 16 {
			t.Fatalf("queue holds %d envelopes, want exactly 16", items)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		q := newQueue(1000, 100<<10) // 100 KiB, 25 KiB a sender
		sent := 0
		for q.pushEnvelope(envFrom(senders[0], to, 4<<10), senders[0]) {
			sent += 4 << 10
		}
		if _, bytes := q.load(); bytes > 25<<10 || sent < 20<<10 {
			t.Fatalf("one sender queued %d bytes (%d body), share is %d", bytes, sent, 25<<10)
		}
		for _, s := range senders[1:] {
			for q.pushEnvelope(envFrom(s, to, 4<<10), s) {
			}
		}
		if _, bytes := q.load(); bytes > 100<<10 {
			t.Fatalf("queue holds %d bytes, bound %d", bytes, 100<<10)
		}
	})
	t.Run("control reserve and release", func(t *testing.T) {
		q := newQueue(16, 1<<20)
		for _, s := range senders {
			for q.pushEnvelope(envFrom(s, to, 10), s) {
			}
		}
		for i := range 16 {
			if !q.pushControl(outItem{pong: &signalpb.Pong{Seq: uint64(i)}}) {
				t.Fatalf("control item %d refused with envelopes filling the queue", i)
			}
		}
		// Draining frees the senders' shares.
		for len(q.ch) > 0 {
			q.dequeued(<-q.ch)
		}
		if items, bytes := q.load(); items != 0 || bytes != 0 || len(q.senders) != 0 {
			t.Fatalf("after draining: %d items, %d bytes, %d senders", items, bytes, len(q.senders))
		}
		if !q.pushEnvelope(envFrom(senders[0], to, 10), senders[0]) {
			t.Fatal("share not released")
		}
	})
}

// TestBatchRespectsMaxFrame queues far more than a frame of maximum-size
// envelopes and checks every frame stays under MaxFrame, in order, with
// nothing lost.
func TestBatchRespectsMaxFrame(t *testing.T) {
	s := NewServer(Config{Key: fuzzKey(1), QueueBytes: 64 << 20, QueueSize: 4096})
	to := fuzzSession(s, fuzzKey(9))
	want := 0
	for i := range 40 {
		from := fuzzKey(byte(10 + i%8)).Public()
		for range 8 {
			e := envFrom(from, to.key, s.cfg.MaxBody)
			e.Id = uint64(want)
			if !to.q.pushEnvelope(e, from) {
				t.Fatalf("envelope %d refused", want)
			}
			want++
		}
		to.push(outItem{err: &signalpb.Error{RefId: 7, Message: "x", To: to.keyBytes}})
	}
	next, multi := 0, false
	for _, f := range drainFrames(s, to) {
		if n := proto.Size(f); n > s.cfg.MaxFrame {
			t.Fatalf("%d-byte frame, MaxFrame %d", n, s.cfg.MaxFrame)
		}
		multi = multi || len(f.Envelopes) > 1
		for _, e := range f.Envelopes {
			if e.Id != uint64(next) {
				t.Fatalf("envelope %d out of order (want %d)", e.Id, next)
			}
			next++
		}
	}
	if next != want || !multi {
		t.Fatalf("drained %d of %d envelopes (batched: %v)", next, want, multi)
	}
}
