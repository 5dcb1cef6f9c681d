package client

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	"petrel/proto/signalpb"
)

func testKey(b byte) keys.Private {
	var k keys.Private
	for i := range k {
		k[i] = b + byte(i)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

// FuzzOpen feeds arbitrary envelope bodies to the client's open path.
func FuzzOpen(f *testing.F) {
	me, peer := testKey(1), testKey(2)
	pt, _ := proto.Marshal(&signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Offer{Offer: &signalpb.Offer{IceUfrag: "u", IcePwd: "p"}}})
	good, _ := seal.Seal(pt, me.Public(), peer)
	junk, _ := seal.Seal([]byte{0xff, 0xff, 0xff}, me.Public(), peer)
	f.Add(good)
	f.Add(junk)
	f.Add([]byte{})
	f.Add(make([]byte, seal.Overhead))
	c := New(Config{Key: me})
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := c.Open(peer.Public(), body)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
	})
}

// FuzzHandleServerFrame feeds arbitrary server frames to the client's
// receive path (envelopes are opened and delivered, errors reported).
func FuzzHandleServerFrame(f *testing.F) {
	me, peer := testKey(1), testKey(2)
	pp := peer.Public()
	pt, _ := proto.Marshal(&signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Candidate{Candidate: &signalpb.Candidate{SessionId: 1, Candidate: "c"}}})
	good, _ := seal.Seal(pt, me.Public(), peer)
	for _, s := range []*signalpb.ServerFrame{
		{Kind: &signalpb.ServerFrame_Ping{Ping: &signalpb.Ping{Seq: 1}}},
		{Envelopes: []*signalpb.Envelope{{From: pp[:], Id: 1, Body: good}, {From: []byte{1}, Body: good}}},
		{Errors: []*signalpb.Error{{RefId: 1, Code: signalpb.ErrorCode_NOT_CONNECTED, To: pp[:]}, {To: []byte{1, 2}}}},
	} {
		b, _ := proto.Marshal(s)
		f.Add(b)
	}
	c := New(Config{Key: me})
	c.SetHandler(func(from keys.Public, m *signalpb.PeerMessage) {
		if m == nil {
			panic("nil message delivered")
		}
	})
	c.OnError(func(*DeliveryError) {})
	pongs := make(chan uint64, 1)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := &signalpb.ServerFrame{}
		if err := proto.Unmarshal(data, fr); err != nil {
			return
		}
		c.handleFrame(fr, pongs)
		select {
		case <-pongs:
		default:
		}
	})
}
