package peer

import (
	"testing"
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
