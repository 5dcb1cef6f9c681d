package signal

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/signalpb"
)

// NonceLen is the length of the registration challenge nonce.
const NonceLen = 32

var errProtocol = errors.New("protocol violation")

// session is one registered stream.
type session struct {
	key       keys.Public
	keyBytes  []byte // key[:], shared read-only by every envelope it sends
	q         *queue
	lastRecv  atomic.Int64            // unix nanos of the last received frame
	limit     *rate.Limiter           // envelopes sent; nil: unlimited; reader goroutine only
	byteLimit *rate.Limiter           // body bytes sent; nil: unlimited; reader goroutine only
	fwd       chan *signalpb.Envelope // to the forwarding goroutine (cluster.go); created by the reader

	killOnce sync.Once
	killed   chan struct{}
	killErr  error
}

func newSession(items, bytes int) *session {
	s := &session{q: newQueue(items, bytes), killed: make(chan struct{})}
	s.touch()
	return s
}

func (s *session) touch() { s.lastRecv.Store(time.Now().UnixNano()) }

func (s *session) lastRecvTime() time.Time { return time.Unix(0, s.lastRecv.Load()) }

// kill ends the session with err (its handler returns err). First call wins.
func (s *session) kill(err error) {
	s.killOnce.Do(func() {
		s.killErr = err
		close(s.killed)
	})
}

func (s *session) dead() bool {
	select {
	case <-s.killed:
		return true
	default:
		return false
	}
}

// push queues a control item (pong, delivery error) for the session itself
// without blocking; it reports false when the queue is full.
func (s *session) push(it outItem) bool { return s.q.pushControl(it) }

// readLoop registers the stream (reporting the outcome on regc) and then
// routes every received frame until the stream fails (reported on done).
func (s *Server) readLoop(stream signalpb.Signal_ConnectServer, sess *session, regc, done chan<- error) {
	if err := s.register(stream, sess); err != nil {
		regc <- err
		return
	}
	regc <- nil
	for {
		f, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				err = status.Error(codes.Canceled, "client closed the stream")
			}
			done <- errFromReader(err)
			return
		}
		sess.touch()
		if err := s.handleFrame(sess, f); err != nil {
			done <- errFromReader(err)
			return
		}
	}
}

// register runs Hello → Challenge → ChallengeResponse on the stream.
func (s *Server) register(stream signalpb.Signal_ConnectServer, sess *session) error {
	f, err := stream.Recv()
	if err != nil {
		return errFromReader(err)
	}
	hello := f.GetHello()
	if hello == nil || len(f.Envelopes) != 0 {
		return status.Error(codes.InvalidArgument, "first frame must be Hello")
	}
	pub, err := keys.PublicFromBytes(hello.PublicKey)
	if err != nil || pub.IsZero() {
		return status.Error(codes.InvalidArgument, "hello: bad public key")
	}
	// A low-order point gives an all-zero shared secret that anyone can
	// compute; no real WireGuard key is one.
	if _, err := curve25519.X25519(s.cfg.Key[:], pub[:]); err != nil {
		return status.Error(codes.InvalidArgument, "hello: public key is a low-order point")
	}
	var nonce [NonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return status.Error(codes.Internal, "read random")
	}
	err = stream.Send(&signalpb.ServerFrame{Kind: &signalpb.ServerFrame_Challenge{Challenge: &signalpb.Challenge{
		Nonce: nonce[:], ServerPublicKey: s.pub[:],
	}}})
	if err != nil {
		return err
	}
	f, err = stream.Recv()
	if err != nil {
		return errFromReader(err)
	}
	resp := f.GetChallengeResponse()
	if resp == nil || len(f.Envelopes) != 0 {
		return status.Error(codes.InvalidArgument, "second frame must be ChallengeResponse")
	}
	if !VerifyChallenge(nonce[:], resp.Sealed, pub, s.cfg.Key) {
		s.ctr.authFailures.Add(1)
		s.log.Info("registration refused: challenge does not verify", "peer", pub.Short())
		return status.Error(codes.PermissionDenied, "challenge response does not verify")
	}
	if s.cfg.Authorize != nil && !s.cfg.Authorize(pub) {
		s.ctr.unauthorized.Add(1)
		s.log.Info("registration refused: key not authorized", "peer", pub.Short())
		return status.Error(codes.PermissionDenied, "key is not registered")
	}
	sess.key = pub
	sess.keyBytes = sess.key[:]
	sess.touch()
	return nil
}

// VerifyChallenge reports whether sealed is nonce sealed by the holder of
// client's private key to the holder of server (constant-time compare).
func VerifyChallenge(nonce, sealed []byte, client keys.Public, server keys.Private) bool {
	if len(sealed) != len(nonce)+seal.Overhead {
		return false
	}
	got, err := seal.Open(sealed, client, server)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, nonce) == 1
}

// handleFrame processes one post-registration frame from sess. A returned
// error ends the session.
func (s *Server) handleFrame(sess *session, f *signalpb.ClientFrame) error {
	switch k := f.Kind.(type) {
	case nil, *signalpb.ClientFrame_Pong:
	case *signalpb.ClientFrame_Ping:
		if !sess.push(outItem{pong: &signalpb.Pong{Seq: k.Ping.GetSeq()}}) {
			return s.overflow(sess)
		}
	default:
		return fmt.Errorf("%w: unexpected %T after registration", errProtocol, k)
	}
	if len(f.Envelopes) > s.cfg.MaxBatch {
		return fmt.Errorf("%w: %d envelopes in one frame (max %d)", errProtocol, len(f.Envelopes), s.cfg.MaxBatch)
	}
	for _, e := range f.Envelopes {
		if e == nil {
			continue
		}
		if err := s.route(sess, e); err != nil {
			return err
		}
	}
	return nil
}

// route delivers e from sess to its recipient's queue, or answers sess with
// an Error. Only a full queue on sess itself returns an error.
func (s *Server) route(sess *session, e *signalpb.Envelope) error {
	var code signalpb.ErrorCode
	var msg string
	switch {
	case len(e.To) != keys.Len:
		code, msg = signalpb.ErrorCode_BAD_REQUEST, "recipient key must be 32 bytes"
	case len(e.Body) == 0:
		code, msg = signalpb.ErrorCode_BAD_REQUEST, "empty body"
	case len(e.Body) > s.cfg.MaxBody:
		code, msg = signalpb.ErrorCode_TOO_LARGE, "body too large"
	}
	if code != 0 {
		s.ctr.rejected.Add(1)
		return s.reply(sess, e, code, msg)
	}
	if (sess.limit != nil && !sess.limit.Allow()) || (sess.byteLimit != nil && !sess.byteLimit.AllowN(time.Now(), len(e.Body))) {
		s.ctr.rateLimited.Add(1)
		return s.reply(sess, e, signalpb.ErrorCode_RATE_LIMITED, "sender rate limit exceeded")
	}
	dst := s.reg.get(keys.Public(e.To))
	if (dst == nil || dst.dead()) && s.cfg.Cluster != nil {
		return s.forward(sess, e)
	}
	if dst == nil || dst.dead() {
		s.ctr.undeliverable.Add(1)
		return s.reply(sess, e, signalpb.ErrorCode_NOT_CONNECTED, "recipient not connected")
	}
	e.From = sess.keyBytes
	// A full queue is the sender's problem, not the recipient's: closing
	// the recipient would let any stranger disconnect it by sending faster
	// than it reads. A recipient that stops reading altogether is closed by
	// the heartbeat instead.
	if !dst.q.pushEnvelope(e, sess.key) {
		s.ctr.busy.Add(1)
		return s.reply(sess, e, signalpb.ErrorCode_RATE_LIMITED, "recipient busy: no room in its queue for more from this sender")
	}
	s.ctr.routed.Add(1)
	return nil
}

func (s *Server) reply(sess *session, e *signalpb.Envelope, code signalpb.ErrorCode, msg string) error {
	to := e.To
	if len(to) > keys.Len {
		to = to[:keys.Len]
	}
	if !sess.push(outItem{err: &signalpb.Error{RefId: e.Id, Code: code, Message: msg, To: to}}) {
		return s.overflow(sess)
	}
	return nil
}

func (s *Server) overflow(sess *session) error {
	s.ctr.overflows.Add(1)
	err := status.Error(codes.ResourceExhausted, "outbound queue overflow")
	sess.kill(err)
	return err
}
