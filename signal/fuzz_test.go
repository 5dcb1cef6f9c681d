package signal

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/signalpb"
)

func fuzzKey(b byte) keys.Private {
	var k keys.Private
	for i := range k {
		k[i] = b + byte(i)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

// drainFrames empties sess's queue into frames as the writer would.
func drainFrames(s *Server, sess *session) []*signalpb.ServerFrame {
	var out []*signalpb.ServerFrame
	var carry *outItem
	for {
		var it outItem
		if carry != nil {
			it = *carry
		} else {
			select {
			case it = <-sess.q.ch:
				sess.q.dequeued(it)
			default:
				return out
			}
		}
		var f *signalpb.ServerFrame
		f, carry = s.batch(sess, it)
		out = append(out, f)
	}
}

func fuzzSession(s *Server, key keys.Private) *session {
	sess := newSession(s.cfg.QueueSize, s.cfg.QueueBytes)
	sess.key = key.Public()
	sess.keyBytes = sess.key[:]
	if _, ok := s.reg.put(sess, 0); !ok {
		panic("put")
	}
	return sess
}

// FuzzHandleClientFrame feeds arbitrary bytes to the server's frame
// handling for a registered session: unmarshal + handle must never panic,
// and whatever it queues must be well formed.
func FuzzHandleClientFrame(f *testing.F) {
	peerKey := fuzzKey(9)
	peerPub := peerKey.Public()
	seeds := []*signalpb.ClientFrame{
		{},
		{Kind: &signalpb.ClientFrame_Ping{Ping: &signalpb.Ping{Seq: 3}}},
		{Kind: &signalpb.ClientFrame_Pong{Pong: &signalpb.Pong{Seq: 3}}},
		{Kind: &signalpb.ClientFrame_Hello{Hello: &signalpb.Hello{PublicKey: peerPub[:]}}},
		{Envelopes: []*signalpb.Envelope{{To: peerPub[:], Id: 1, Body: []byte("sealed")}}},
		{Envelopes: []*signalpb.Envelope{{To: make([]byte, 32), Id: 2, Body: []byte("x")}, {To: []byte{1}, Id: 3}}},
		{Envelopes: []*signalpb.Envelope{{To: peerPub[:], From: peerPub[:], Id: 4, Body: make([]byte, 100)}}},
	}
	for _, s := range seeds {
		b, _ := proto.Marshal(s)
		f.Add(b)
	}
	s := NewServer(Config{Key: fuzzKey(1), QueueSize: 8, MaxBatch: 16, MaxBody: 64})
	meKey := fuzzKey(5)
	me, peer := fuzzSession(s, meKey), fuzzSession(s, peerKey)
	f.Fuzz(func(t *testing.T, data []byte) {
		if me.dead() {
			me = fuzzSession(s, meKey)
		}
		if peer.dead() {
			peer = fuzzSession(s, peerKey)
		}
		frame := &signalpb.ClientFrame{}
		if err := proto.Unmarshal(data, frame); err != nil {
			return
		}
		_ = s.handleFrame(me, frame)
		for _, q := range []*session{me, peer} {
			for _, fr := range drainFrames(s, q) {
				if n := proto.Size(fr); n > s.cfg.MaxFrame {
					t.Fatalf("%d-byte frame, MaxFrame %d", n, s.cfg.MaxFrame)
				}
				for _, e := range fr.Envelopes {
					if len(e.From) != keys.Len || len(e.To) != keys.Len {
						t.Fatalf("routed malformed envelope %v", e)
					}
				}
				for _, e := range fr.Errors {
					if len(e.To) > keys.Len {
						t.Fatalf("error echoes oversized key")
					}
				}
				if _, err := proto.Marshal(fr); err != nil {
					t.Fatalf("marshal reply: %v", err)
				}
			}
		}
	})
}

// FuzzVerifyChallenge checks that arbitrary challenge responses never
// panic and never verify unless they open to the nonce.
func FuzzVerifyChallenge(f *testing.F) {
	server, client := fuzzKey(1), fuzzKey(2)
	nonce := make([]byte, NonceLen)
	good, _ := seal.Seal(nonce, server.Public(), client)
	f.Add(good)
	f.Add([]byte{})
	f.Add(make([]byte, NonceLen+seal.Overhead))
	f.Fuzz(func(t *testing.T, sealed []byte) {
		if VerifyChallenge(nonce, sealed, client.Public(), server) {
			got, err := seal.Open(sealed, client.Public(), server)
			if err != nil || string(got) != string(nonce) {
				t.Fatal("verified a response that does not open to the nonce")
			}
		}
	})
}
