package client

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestKeyCacheBounded(t *testing.T) {
	me := testKey(1)
	c := newKeyCache(me, 8)
	first := testKey(2).Public()
	p1 := c.get(first)
	if c.get(first) != p1 {
		t.Fatal("cache miss on repeated key")
	}
	for i := 0; i < 100; i++ {
		var k keys.Public
		k[0], k[1] = byte(i), 0xaa
		c.get(k)
		if n := c.len(); n > 8 {
			t.Fatalf("cache holds %d entries, max 8", n)
		}
	}
	// Precomputed keys stay correct after eviction.
	msg := []byte("hello")
	sealed, err := c.get(first).Seal(msg)
	if err != nil {
		t.Fatal(err)
	}
	peer := newKeyCache(testKey(2), 8)
	got, err := peer.get(me.Public()).Open(sealed)
	if err != nil || string(got) != "hello" {
		t.Fatalf("open after eviction: %q %v", got, err)
	}
}

func TestDeliveryErrorIs(t *testing.T) {
	tests := []struct {
		code signalpb.ErrorCode
		want bool
	}{
		{signalpb.ErrorCode_NOT_CONNECTED, true},
		{signalpb.ErrorCode_BAD_REQUEST, false},
		{signalpb.ErrorCode_TOO_LARGE, false},
	}
	for _, tt := range tests {
		err := error(&DeliveryError{Code: tt.code, Message: "m"})
		if got := errors.Is(err, ErrRecipientNotConnected); got != tt.want {
			t.Errorf("%v: Is = %v, want %v", tt.code, got, tt.want)
		}
		if err.Error() == "" {
			t.Error("empty message")
		}
	}
}

func TestStartValidates(t *testing.T) {
	if err := New(Config{Target: "127.0.0.1:1"}).Start(t.Context()); err == nil {
		t.Fatal("start without key succeeded")
	}
	if err := New(Config{Key: testKey(1)}).Start(t.Context()); err == nil {
		t.Fatal("start without target succeeded")
	}
}
