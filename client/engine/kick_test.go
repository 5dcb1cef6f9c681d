package engine

import (
	"testing"

	"petrel/internal/keys"
)

// Exactly one side of every pair initiates the first handshake (and gets
// the keepalive at creation); the other starts with it off.
func TestExactlyOneSideInitiates(t *testing.T) {
	for i := 0; i < 50; i++ {
		ka, err := keys.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		kb, err := keys.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		a := &Engine{pub: ka.Public()}
		b := &Engine{pub: kb.Public()}
		ia, ib := a.initiates(kb.Public()), b.initiates(ka.Public())
		if ia == ib {
			t.Fatalf("pair %d: a initiates %v, b initiates %v", i, ia, ib)
		}
		if (a.initialKeepalive(kb.Public()) == keepalive) != ia || (b.initialKeepalive(ka.Public()) == 0) != ia {
			t.Fatalf("pair %d: keepalive does not follow the initiator", i)
		}
	}
}
