package mgmt

import (
	"crypto/rand"
	"sync/atomic"
	"time"
)

// serverClock stamps requests on the server's clock: the server accepts a
// sealed Login or Sync only within a window of its own time and only once
// per nonce (replay protection), so an agent whose clock is off still gets
// in. The offset is learnt from each ServerKey answer (which every Login
// and Sync fetches first), assuming the server read its clock half way
// through the round trip.
type serverClock struct {
	offsetMs atomic.Int64 // server minus local
}

func (c *serverClock) learn(sent, received time.Time, serverMs int64) {
	if serverMs <= 0 {
		return // an older server: stamp with the local clock
	}
	mid := sent.Add(received.Sub(sent) / 2)
	c.offsetMs.Store(serverMs - mid.UnixMilli())
}

// stamp returns the server-clock time and a fresh random nonce.
func (c *serverClock) stamp() (int64, []byte) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return time.Now().UnixMilli() + c.offsetMs.Load(), nonce
}
