package client

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

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

// TestPackFrameRespectsMaxFrame: 100 queued envelopes of 64 KiB go out in
// frames under MaxFrame (the server's gRPC receive limit is 4 MiB; 64 of
// them in one frame would exceed it), in order, none lost.
func TestPackFrameRespectsMaxFrame(t *testing.T) {
	out := make(chan *signalpb.Envelope, 100)
	to := make([]byte, 32)
	for i := range 100 {
		out <- &signalpb.Envelope{To: to, Id: uint64(i), Body: make([]byte, 64<<10)}
	}
	var carry *signalpb.Envelope
	next := 0
	for len(out) > 0 || carry != nil {
		first := carry
		if first == nil {
			first = <-out
		}
		var f *signalpb.ClientFrame
		f, carry = packFrame(first, out)
		if n := proto.Size(f); n > MaxFrame {
			t.Fatalf("%d-byte frame, MaxFrame %d", n, MaxFrame)
		}
		for _, e := range f.Envelopes {
			if e.Id != uint64(next) {
				t.Fatalf("envelope %d out of order", e.Id)
			}
			next++
		}
	}
	if next != 100 {
		t.Fatalf("sent %d of 100", next)
	}
}

func TestRetryHint(t *testing.T) {
	st, _ := status.New(codes.ResourceExhausted, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)})
	if got := retryHint(fmt.Errorf("receive challenge: %w", st.Err())); got != 1500*time.Millisecond {
		t.Fatalf("hint %v, want 1.5s", got)
	}
	huge, _ := status.New(codes.ResourceExhausted, "x").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(100 * time.Hour)})
	if got := retryHint(huge.Err()); got != maxRetryHint {
		t.Fatalf("hint %v, want the cap", got)
	}
	for _, err := range []error{nil, errors.New("plain"), status.Error(codes.ResourceExhausted, "no detail")} {
		if got := retryHint(err); got != 0 {
			t.Fatalf("%v: hint %v", err, got)
		}
	}
}
