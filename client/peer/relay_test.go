package peer

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
)

type fakeSignal struct {
	mu   sync.Mutex
	sent []*signalpb.PeerMessage
}

func (f *fakeSignal) Send(_ context.Context, _ keys.Public, m *signalpb.PeerMessage) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	return nil
}

type fakeEndpoints struct {
	mu  sync.Mutex
	set []string
}

func (f *fakeEndpoints) SetEndpoint(_ keys.Public, ep string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set = append(f.set, ep)
	return nil
}

func (f *fakeEndpoints) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.set...)
}

func testKey(t *testing.T) keys.Public {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// The relay path waits for this agent's own home relay: before it is
// connected, the remote's relay is remembered but not used; RelayChanged
// (home connected) switches WireGuard to it.
func TestRelayPathWaitsForOwnHome(t *testing.T) {
	var home atomic.Pointer[string]
	empty := ""
	home.Store(&empty)
	ep := &fakeEndpoints{}
	c := New(Config{
		Local: testKey(t), Remote: testKey(t), Signal: &fakeSignal{}, Endpoints: ep,
		RelayHome:      func() string { return *home.Load() },
		RelayEndpoint:  func(_ keys.Public, u string) string { return "relay:" + u },
		DirectEndpoint: func(a string) string { return a },
		ForceRelay:     true,
	})
	c.Start()
	defer c.Close()
	c.OnSignal(&signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Offer{Offer: &signalpb.Offer{
		SessionId: 7, RelayInstanceUrl: "rel://us-1.example:8080"}}})
	if st := c.Status(); st.Path != PathNone || st.RelayURL != "rel://us-1.example:8080" || st.Reason != ReasonForced {
		t.Fatalf("before the home relay: %+v", st)
	}
	if got := ep.all(); len(got) != 0 {
		t.Fatalf("endpoint set before the home relay connected: %v", got)
	}
	h := "rel://eu-1.example:8080"
	home.Store(&h)
	c.RelayChanged()
	if st := c.Status(); st.Path != PathRelay {
		t.Fatalf("after the home relay connected: %+v", st)
	}
	if got := ep.all(); len(got) != 1 || got[0] != "relay:rel://us-1.example:8080" {
		t.Fatalf("endpoints %v", got)
	}
	c.RelayChanged() // again: no second switch
	if got := ep.all(); len(got) != 1 {
		t.Fatalf("endpoints after a second RelayChanged %v", got)
	}
}

func (f *fakeSignal) offers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.sent {
		if m.GetOffer() != nil {
			n++
		}
	}
	return n
}

// An unanswered offer goes out again as soon as signal reconnects; once
// the remote session is bound, a reconnect sends nothing.
func TestSignalConnectedResendsPendingOffer(t *testing.T) {
	sig := &fakeSignal{}
	c := New(Config{Local: testKey(t), Remote: testKey(t), Signal: sig, Endpoints: &fakeEndpoints{},
		ForceRelay: true})
	c.Start()
	c.SignalConnected()
	c.OnSignal(&signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Offer{Offer: &signalpb.Offer{SessionId: 9}}})
	c.SignalConnected()
	c.Close() // waits for the asynchronous sends
	if got := sig.offers(); got != 2 {
		t.Fatalf("sent %d offers, want 2 (start + reconnect before binding)", got)
	}
}
