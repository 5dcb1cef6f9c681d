package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/internal/backoff"
	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/signalpb"
)

var errHeartbeat = errors.New("signal: heartbeat timeout")

// loop connects, serves and reconnects until ctx ends.
func (c *Client) loop(ctx context.Context, api signalpb.SignalClient) {
	defer close(c.done)
	b := backoff.Backoff{Min: c.cfg.BackoffMin, Max: c.cfg.BackoffMax}
	for {
		registered, err := c.session(ctx, api)
		if ctx.Err() != nil {
			return
		}
		if registered {
			b.Reset()
		}
		d := b.Next()
		if status.Code(err) == codes.Aborted {
			d = c.cfg.ReplacedDelay + backoff.Jitter(c.cfg.ReplacedDelay/2)
			c.log.Warn("signal session replaced by another process with the same key", "retry_in", d)
		} else if hint := retryHint(err); hint > d {
			d = hint + backoff.Jitter(hint/4)
			c.log.Info("signal server asks to retry later", "err", err, "retry_in", d)
		} else {
			c.log.Info("signal disconnected", "err", err, "retry_in", d)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		// Our own backoff already spaced the attempts: make the channel
		// dial now instead of stacking gRPC's reconnect backoff on top
		// (which kept failing with a stale dial error after a server
		// restart).
		if c.owned != nil {
			c.owned.ResetConnectBackoff()
		}
	}
}

// maxRetryHint caps a server's retry hint, so a confused server cannot
// park the client for hours.
const maxRetryHint = 5 * time.Minute

// retryHint returns the delay in a RetryInfo detail of err's gRPC status
// (sent with ResourceExhausted by a server that limits session opens), or 0.
func retryHint(err error) time.Duration {
	st, ok := status.FromError(err)
	if !ok {
		return 0
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().IsValid() {
			return min(max(ri.GetRetryDelay().AsDuration(), 0), maxRetryHint)
		}
	}
	return 0
}

// session runs one stream: registration, then traffic until it fails.
func (c *Client) session(ctx context.Context, api signalpb.SignalClient) (registered bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := api.Connect(sctx)
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}
	hs := time.AfterFunc(c.cfg.RegisterTimeout, cancel)
	interval, err := c.register(stream)
	if !hs.Stop() && err == nil {
		err = errors.New("registration timed out")
	}
	if err != nil {
		return false, err
	}

	l := &link{out: make(chan *signalpb.Envelope, c.cfg.QueueSize), done: make(chan struct{})}
	var lastRecv atomic.Int64
	lastRecv.Store(time.Now().UnixNano())
	pongs := make(chan uint64, 4)
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		readErr <- c.readLoop(stream, &lastRecv, pongs)
	}()
	c.cur.Store(l)
	c.log.Info("signal connected")
	c.setState(true)
	defer func() {
		c.cur.Store(nil)
		close(l.done)
		cancel()
		<-readerDone
		c.setState(false)
	}()
	return true, c.writeLoop(sctx, stream, l, interval, &lastRecv, pongs, readErr)
}

// register runs Hello → Challenge → ChallengeResponse → Registered and
// returns the server's heartbeat interval.
func (c *Client) register(stream signalpb.Signal_ConnectClient) (time.Duration, error) {
	err := stream.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_Hello{Hello: &signalpb.Hello{PublicKey: c.pub[:]}}})
	if err != nil {
		return 0, fmt.Errorf("send hello: %w", err)
	}
	f, err := stream.Recv()
	if err != nil {
		return 0, fmt.Errorf("receive challenge: %w", err)
	}
	ch := f.GetChallenge()
	if ch == nil || len(ch.Nonce) < 16 {
		return 0, errors.New("receive challenge: malformed")
	}
	spub, err := keys.PublicFromBytes(ch.ServerPublicKey)
	if err != nil {
		return 0, fmt.Errorf("receive challenge: server key: %w", err)
	}
	if !c.cfg.ServerKey.IsZero() && spub != c.cfg.ServerKey {
		return 0, fmt.Errorf("receive challenge: server key %s is not the pinned %s", spub.Short(), c.cfg.ServerKey.Short())
	}
	sealed, err := seal.Seal(ch.Nonce, spub, c.cfg.Key)
	if err != nil {
		return 0, fmt.Errorf("seal challenge: %w", err)
	}
	err = stream.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_ChallengeResponse{
		ChallengeResponse: &signalpb.ChallengeResponse{Sealed: sealed},
	}})
	if err != nil {
		return 0, fmt.Errorf("send challenge response: %w", err)
	}
	f, err = stream.Recv()
	if err != nil {
		return 0, fmt.Errorf("register: %w", err)
	}
	reg := f.GetRegistered()
	if reg == nil {
		return 0, errors.New("register: expected Registered")
	}
	interval := time.Duration(reg.HeartbeatIntervalMs) * time.Millisecond
	if interval < 100*time.Millisecond {
		interval = 100 * time.Millisecond
	}
	return interval, nil
}

// writeLoop is the only sender on the stream after registration.
func (c *Client) writeLoop(ctx context.Context, stream signalpb.Signal_ConnectClient, l *link,
	interval time.Duration, lastRecv *atomic.Int64, pongs <-chan uint64, readErr <-chan error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var carry *signalpb.Envelope // did not fit the previous frame
	for {
		if carry != nil {
			var f *signalpb.ClientFrame
			f, carry = packFrame(carry, l.out)
			if err := stream.Send(f); err != nil {
				return sendFailed(ctx, err, readErr)
			}
			continue
		}
		select {
		case env := <-l.out:
			var f *signalpb.ClientFrame
			f, carry = packFrame(env, l.out)
			if err := stream.Send(f); err != nil {
				return sendFailed(ctx, err, readErr)
			}
		case seq := <-pongs:
			if err := stream.Send(&signalpb.ClientFrame{Kind: &signalpb.ClientFrame_Pong{Pong: &signalpb.Pong{Seq: seq}}}); err != nil {
				return sendFailed(ctx, err, readErr)
			}
		case <-tick.C:
			if time.Since(time.Unix(0, lastRecv.Load())) > 3*interval {
				return errHeartbeat
			}
		case err := <-readErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// packFrame builds one frame from first plus whatever else is queued on
// out, up to MaxBatch envelopes and MaxFrame bytes; an envelope that does
// not fit is returned to start the next frame.
func packFrame(first *signalpb.Envelope, out <-chan *signalpb.Envelope) (f *signalpb.ClientFrame, carry *signalpb.Envelope) {
	f = &signalpb.ClientFrame{Envelopes: make([]*signalpb.Envelope, 1, min(1+len(out), MaxBatch))}
	f.Envelopes[0] = first
	size := envelopeSize(first)
	for len(f.Envelopes) < MaxBatch {
		select {
		case env := <-out:
			if size += envelopeSize(env); size > MaxFrame {
				return f, env
			}
			f.Envelopes = append(f.Envelopes, env)
		default:
			return f, nil
		}
	}
	return f, nil
}

// envelopeSize bounds the bytes e adds to a frame (tags, lengths, id).
func envelopeSize(e *signalpb.Envelope) int { return len(e.Body) + len(e.To) + len(e.From) + 32 }

// sendFailed returns the stream's status after a failed Send: io.EOF
// means the server ended the stream, and the reader goroutine (the only
// caller of Recv) reports why.
func sendFailed(ctx context.Context, err error, readErr <-chan error) error {
	if err != io.EOF {
		return err
	}
	select {
	case rerr := <-readErr:
		return rerr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readLoop receives frames until the stream fails.
func (c *Client) readLoop(stream signalpb.Signal_ConnectClient, lastRecv *atomic.Int64, pongs chan<- uint64) error {
	for {
		f, err := stream.Recv()
		if err != nil {
			return err
		}
		lastRecv.Store(time.Now().UnixNano())
		c.handleFrame(f, pongs)
	}
}

// handleFrame dispatches one server frame (never blocks on the network).
func (c *Client) handleFrame(f *signalpb.ServerFrame, pongs chan<- uint64) {
	if p := f.GetPing(); p != nil {
		select {
		case pongs <- p.Seq:
		default: // a pong is already pending; one is enough
		}
	}
	for _, e := range f.Envelopes {
		c.deliver(e)
	}
	if len(f.Errors) == 0 {
		return
	}
	h := c.onErr.Load()
	for _, e := range f.Errors {
		if e == nil {
			continue
		}
		to, _ := keys.PublicFromBytes(e.To)
		de := &DeliveryError{To: to, ID: e.RefId, Code: e.Code, Message: e.Message}
		if h != nil {
			(*h)(de)
		} else {
			c.log.Debug("signal message not delivered", "err", de)
		}
	}
}

func (c *Client) deliver(e *signalpb.Envelope) {
	if e == nil {
		return
	}
	from, err := keys.PublicFromBytes(e.From)
	if err != nil {
		c.log.Debug("dropping envelope with bad sender key")
		return
	}
	msg, err := c.Open(from, e.Body)
	if err != nil {
		c.log.Debug("dropping envelope", "from", from.Short(), "err", err)
		return
	}
	if h := c.handler.Load(); h != nil {
		(*h)(from, msg)
	}
}
