package signal

import (
	"sync"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
)

// Wire-size estimates (upper bounds) used to keep frames under MaxFrame and
// to account queue bytes: protobuf tags, lengths and the envelope id.
const (
	itemOverhead  = 32
	frameOverhead = 16
)

// shareDiv sets each sender's share of a recipient's queue: at most
// 1/shareDiv of its items and of its bytes may come from one sender, so a
// few strangers cannot fill the queue and crowd out everyone else.
const shareDiv = 4

// outItem is one entry of a session's outbound queue.
type outItem struct {
	env  *signalpb.Envelope
	err  *signalpb.Error
	pong *signalpb.Pong
}

// wireSize bounds the bytes it adds to a ServerFrame.
func (it outItem) wireSize() int {
	switch {
	case it.env != nil:
		return len(it.env.Body) + len(it.env.To) + len(it.env.From) + itemOverhead
	case it.err != nil:
		return len(it.err.Message) + len(it.err.To) + itemOverhead
	default:
		return itemOverhead
	}
}

// queue is a session's bounded outbound queue. Envelopes routed from other
// peers are admitted under limits on items, bytes and each sender's share
// of both; the session's own control items (pongs, delivery errors) use a
// reserve of channel slots that envelopes can never take, so strangers
// filling the queue cannot make the session overflow on its own replies.
type queue struct {
	ch chan outItem

	maxItems, maxBytes     int // for envelopes
	shareItems, shareBytes int // for one sender's envelopes

	mu      sync.Mutex
	items   int
	bytes   int
	senders map[keys.Public]usage
}

type usage struct{ items, bytes int }

func newQueue(items, bytes int) *queue {
	reserve := max(items/4, 16)
	return &queue{
		ch:         make(chan outItem, items+reserve),
		maxItems:   items,
		maxBytes:   bytes,
		shareItems: max(items/shareDiv, 1),
		shareBytes: max(bytes/shareDiv, 1),
		senders:    make(map[keys.Public]usage),
	}
}

// pushEnvelope queues e (From already stamped with from) without blocking.
// It reports false when the queue, or from's share of it, is full.
func (q *queue) pushEnvelope(e *signalpb.Envelope, from keys.Public) bool {
	size := outItem{env: e}.wireSize()
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.senders[from]
	if q.items+1 > q.maxItems || q.bytes+size > q.maxBytes ||
		u.items+1 > q.shareItems || u.bytes+size > q.shareBytes {
		return false
	}
	select {
	case q.ch <- outItem{env: e}:
	default: // the reserve is used up by the session's own items
		return false
	}
	q.items++
	q.bytes += size
	q.senders[from] = usage{u.items + 1, u.bytes + size}
	return true
}

// pushControl queues an item for the session itself without blocking; it
// reports false when even the reserve is full.
func (q *queue) pushControl(it outItem) bool {
	select {
	case q.ch <- it:
		return true
	default:
		return false
	}
}

// dequeued releases the accounting of it, just received from q.ch.
func (q *queue) dequeued(it outItem) {
	if it.env == nil {
		return
	}
	size := it.wireSize()
	from := keys.Public(it.env.From)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items--
	q.bytes -= size
	u := q.senders[from]
	if u.items <= 1 {
		delete(q.senders, from)
		return
	}
	q.senders[from] = usage{u.items - 1, u.bytes - size}
}

// load returns the envelopes and bytes queued (tests).
func (q *queue) load() (items, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.items, q.bytes
}
