package peer

import (
	"testing"

	"petrel/proto/signalpb"
)

// The guard's retry leaves a session alone that the remote's retry bound
// and that is checking (replacing it would make the remote replace its
// own: glare, and neither session completes); it replaces a session whose
// offer is still unanswered.
func TestRetryLeavesCheckingSessionAlone(t *testing.T) {
	sig := &fakeSignal{}
	c := New(Config{Local: testKey(t), Remote: testKey(t), Signal: sig, Endpoints: &fakeEndpoints{}})
	defer c.Close()

	c.mu.Lock()
	checking := &session{id: 1, bound: true, started: true, done: make(chan struct{})}
	c.session = checking
	c.retryNowLocked()
	kept := c.session == checking
	unanswered := &session{id: 2, done: make(chan struct{})}
	c.session = unanswered
	c.retryNowLocked()
	replaced := c.session != nil && c.session != unanswered
	c.mu.Unlock()

	if !kept {
		t.Fatal("retry replaced a bound session that is checking")
	}
	if !replaced {
		t.Fatal("retry kept a session whose offer was never answered")
	}
}

// An offer the remote repeats after this side's session failed (and was
// dropped, its retry pending) starts a fresh session and is answered; it
// used to dereference the dropped session and crash the agent (found by
// the blackhole recovery lab test).
func TestRepeatedOfferAfterFailedSession(t *testing.T) {
	sig := &fakeSignal{}
	c := New(Config{Local: testKey(t), Remote: testKey(t), Signal: sig, Endpoints: &fakeEndpoints{}, ForceRelay: true})
	c.Start()
	offer := &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Offer{Offer: &signalpb.Offer{SessionId: 9}}}
	c.OnSignal(offer)
	c.mu.Lock()
	failed := c.session
	c.session = nil // what an ICE failure does, with a retry scheduled
	c.mu.Unlock()
	c.OnSignal(offer)
	c.mu.Lock()
	fresh := c.session
	c.mu.Unlock()
	c.Close() // waits for the asynchronous sends
	if fresh == nil || fresh == failed || !fresh.bound {
		t.Fatalf("after the repeated offer: session %+v, want a fresh bound one", fresh)
	}
	answers := 0
	sig.mu.Lock()
	for _, m := range sig.sent {
		if a := m.GetAnswer(); a != nil && a.SessionId == fresh.id {
			answers++
		}
	}
	sig.mu.Unlock()
	if answers != 1 {
		t.Fatalf("%d answers with the fresh session, want 1", answers)
	}
}
