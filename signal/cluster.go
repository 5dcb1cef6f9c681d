package signal

import (
	"context"
	"time"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
)

// Cluster lets a Server reach peers whose streams are registered on other
// instances of a group sharing one presence directory (petrel-server --ha;
// docs/signal.md "Across instances"). The Server never opens envelopes, so
// forwarding keeps them sealed end to end.
//
// Opened and Closed are called on the stream's handler goroutine; Forward
// on the sending session's forwarding goroutine (one per session, so the
// envelopes of one sender are forwarded in order). All three may block on
// I/O and must bound it themselves; they must be safe for concurrent use.
type Cluster interface {
	// Opened records that key's session registered here and returns a
	// token naming this registration for Closed. The peer is told it is
	// registered afterwards. If the record cannot be written, the
	// implementation keeps retrying it until Closed.
	Opened(key keys.Public) int64
	// Closed says that the session registered with token reg ended; a
	// newer registration of key, here or on another instance, must be
	// kept. It is not called for sessions ended by Server.Stop: the
	// implementation removes all of the instance's records when it stops.
	Closed(key keys.Public, reg int64)
	// Forward delivers e (From already stamped) to the instance holding
	// the session of e.To, which queues it with Server.Deliver, and
	// reports the outcome. Any failure is NotConnected.
	Forward(ctx context.Context, e *signalpb.Envelope) Delivery
}

// Delivery is the outcome of handing an envelope to a session.
type Delivery int

const (
	// Delivered: queued to the recipient's session.
	Delivered Delivery = iota
	// NotConnected: no session of the recipient (here or, forwarded, on
	// its instance), or the instance could not be reached.
	NotConnected
	// Busy: the recipient's queue has no room for more from this sender.
	Busy
	// Invalid: a malformed forwarded envelope (Deliver only).
	Invalid
)

// Forwarding limits.
const (
	// forwardQueue bounds the envelopes of one session waiting to be
	// forwarded; more are answered with RATE_LIMITED.
	forwardQueue = 256
	// ForwardTimeout bounds one Forward call.
	ForwardTimeout = 5 * time.Second
)

// Deliver queues an envelope forwarded by another instance (From stamped
// there, after that instance authenticated the sender) to the local
// session of e.To. It is the receiving end of Cluster.Forward and must
// only be called for an authenticated instance.
func (s *Server) Deliver(e *signalpb.Envelope) Delivery {
	if len(e.To) != keys.Len || len(e.From) != keys.Len || len(e.Body) == 0 || len(e.Body) > s.cfg.MaxBody {
		return Invalid
	}
	dst := s.reg.get(keys.Public(e.To))
	if dst == nil || dst.dead() {
		return NotConnected
	}
	if !dst.q.pushEnvelope(e, keys.Public(e.From)) {
		return Busy
	}
	s.ctr.forwardedIn.Add(1)
	return Delivered
}

// forward hands e, whose recipient is not registered here, to the
// session's forwarding goroutine (started on first use; reader goroutine
// only). A full forwarding queue answers RATE_LIMITED.
func (s *Server) forward(sess *session, e *signalpb.Envelope) error {
	e.From = sess.keyBytes
	if sess.fwd == nil {
		if !s.enter() {
			s.ctr.undeliverable.Add(1)
			return s.reply(sess, e, signalpb.ErrorCode_NOT_CONNECTED, "recipient not connected")
		}
		sess.fwd = make(chan *signalpb.Envelope, forwardQueue)
		go func() {
			defer s.wg.Done()
			s.forwardLoop(sess)
		}()
	}
	select {
	case sess.fwd <- e:
		return nil
	default:
		s.ctr.busy.Add(1)
		return s.reply(sess, e, signalpb.ErrorCode_RATE_LIMITED, "recipient busy: too many envelopes waiting to be forwarded")
	}
}

// forwardLoop forwards sess's envelopes in order until the session or the
// server ends, answering every miss with NOT_CONNECTED.
func (s *Server) forwardLoop(sess *session) {
	// The watcher cancels a Forward in flight when the session or the
	// server ends; forwardLoop waits for it, so both are done on return.
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-sess.killed:
		case <-s.stop:
		case <-ctx.Done():
		}
		cancel()
	}()
	defer func() { cancel(); <-watched }()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-sess.fwd:
			fctx, fcancel := context.WithTimeout(ctx, ForwardTimeout)
			d := s.cfg.Cluster.Forward(fctx, e)
			fcancel()
			var err error
			switch d {
			case Delivered:
				s.ctr.routed.Add(1)
				s.ctr.forwardedOut.Add(1)
			case Busy:
				s.ctr.busy.Add(1)
				err = s.reply(sess, e, signalpb.ErrorCode_RATE_LIMITED, "recipient busy: no room in its queue for more from this sender")
			default:
				s.ctr.undeliverable.Add(1)
				err = s.reply(sess, e, signalpb.ErrorCode_NOT_CONNECTED, "recipient not connected")
			}
			if err != nil {
				return // the session's own queue overflowed; it is being killed
			}
		}
	}
}
