package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The kernel has no netem, so delay is done in user space: an nft rule
// sends the host's packets to an NFQUEUE, and a delayer in this process
// holds each packet's verdict for the configured time. The netlink socket
// is opened inside the namespace (queues are per namespace). Packets keep
// their order (constant delay, in-order batch verdicts). Throughput through
// a delayed path is limited to what one goroutine can verdict (tens of
// thousands of packets per second): enough for control-plane and latency
// tests, not for benchmarks.

// nfqueue protocol constants (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue    = 3
	nfqnlMsgPacket     = 0
	nfqnlMsgConfig     = 2
	nfqnlMsgVerdictBat = 3
	nfqaPacketHdr      = 1
	nfqaVerdictHdr     = 2
	nfqaCfgCmd         = 1
	nfqaCfgParams      = 2
	nfqaCfgQueueMaxlen = 3
	nfqaCfgMask        = 4
	nfqaCfgFlags       = 5
	nfqnlCfgCmdBind    = 1
	nfqnlCopyMeta      = 1
	nfqaCfgFFailOpen   = 1
	nfAccept           = 1
	delayQueueNum      = 7120
)

// held is a queued packet waiting for its release time.
type held struct {
	id  uint32
	due time.Time
}

// delayer releases packets from one NFQUEUE after a delay.
type delayer struct {
	conn    *netlink.Conn
	queue   uint16
	delay   atomic.Int64 // nanoseconds
	pending chan held
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// startDelayer binds queue delayQueueNum inside namespace ns.
func startDelayer(ns string, d time.Duration) (*delayer, error) {
	var conn *netlink.Conn
	err := inNetNS(ns, func() error {
		var err error
		conn, err = netlink.Dial(unix.NETLINK_NETFILTER, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open nfqueue socket: %w", err)
	}
	q := &delayer{conn: conn, queue: delayQueueNum, pending: make(chan held, 1<<16), done: make(chan struct{})}
	q.delay.Store(int64(d))
	_ = conn.SetOption(netlink.NoENOBUFS, true)
	_ = conn.SetReadBuffer(8 << 20)
	cfg := [][]netlink.Attribute{
		{{Type: nfqaCfgCmd, Data: []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_INET}}},
		// struct nfqnl_msg_config_params: be32 copy_range, u8 copy_mode.
		{{Type: nfqaCfgParams, Data: []byte{0, 0, 0, 0, nfqnlCopyMeta}}},
		{{Type: nfqaCfgQueueMaxlen, Data: binary.BigEndian.AppendUint32(nil, 1<<15)}},
		{
			{Type: nfqaCfgFlags, Data: binary.BigEndian.AppendUint32(nil, nfqaCfgFFailOpen)},
			{Type: nfqaCfgMask, Data: binary.BigEndian.AppendUint32(nil, nfqaCfgFFailOpen)},
		},
	}
	for _, attrs := range cfg {
		if err := q.request(nfqnlMsgConfig, attrs, true); err != nil {
			conn.Close()
			return nil, fmt.Errorf("configure nfqueue: %w", err)
		}
	}
	q.wg.Add(2)
	go q.receive()
	go q.release()
	return q, nil
}

func (q *delayer) request(msg uint16, attrs []netlink.Attribute, ack bool) error {
	b, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return err
	}
	data := append([]byte{unix.AF_UNSPEC, 0, byte(q.queue >> 8), byte(q.queue)}, b...)
	m := netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysQueue<<8 | msg), Flags: netlink.Request},
		Data:   data,
	}
	if ack {
		m.Header.Flags |= netlink.Acknowledge
		_, err = q.conn.Execute(m)
		return err
	}
	_, err = q.conn.Send(m)
	return err
}

// receive reads queued-packet notifications and stamps their release time.
func (q *delayer) receive() {
	defer q.wg.Done()
	defer close(q.pending)
	for {
		msgs, err := q.conn.Receive()
		if err != nil {
			select {
			case <-q.done:
				return
			default:
			}
			if errors.Is(err, unix.ENOBUFS) {
				continue
			}
			return
		}
		now := time.Now()
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(nfnlSubsysQueue<<8|nfqnlMsgPacket) || len(m.Data) < 4 {
				continue
			}
			attrs, err := netlink.UnmarshalAttributes(m.Data[4:])
			if err != nil {
				continue
			}
			for _, a := range attrs {
				if a.Type&0x3fff == nfqaPacketHdr && len(a.Data) >= 4 {
					h := held{id: binary.BigEndian.Uint32(a.Data), due: now.Add(time.Duration(q.delay.Load()))}
					select {
					case q.pending <- h:
					case <-q.done:
						return
					}
				}
			}
		}
	}
}

// release accepts packets in order once they are due, batching every
// packet that is due at the same time into one verdict.
func (q *delayer) release() {
	defer q.wg.Done()
	var next *held
	for {
		if next == nil {
			h, ok := <-q.pending
			if !ok {
				return
			}
			next = &h
		}
		if wait := time.Until(next.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-q.done:
				t.Stop()
				return
			}
		}
		last := next.id
		next = nil
	drain:
		for {
			select {
			case h, ok := <-q.pending:
				if !ok {
					break drain
				}
				if h.due.After(time.Now()) {
					next = &h
					break drain
				}
				last = h.id
			default:
				break drain
			}
		}
		verdict := binary.BigEndian.AppendUint32(nil, nfAccept)
		verdict = binary.BigEndian.AppendUint32(verdict, last)
		_ = q.request(nfqnlMsgVerdictBat, []netlink.Attribute{{Type: nfqaVerdictHdr, Data: verdict}}, false)
	}
}

func (q *delayer) setDelay(d time.Duration) { q.delay.Store(int64(d)) }

// close stops the delayer; packets still queued are dropped by the kernel.
func (q *delayer) close() {
	q.once.Do(func() {
		close(q.done)
		_ = q.conn.Close()
		q.wg.Wait()
	})
}
