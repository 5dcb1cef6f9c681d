package wg

import (
	"strings"
	"testing"
	"time"

	"petrel/internal/keys"
)

// PeerStats agrees with the full Stats dump for a live peer, and reports
// unknown peers (and every peer of a closed device) as absent.
func TestPeerStats(t *testing.T) {
	a, b := newPair(t, true)
	waitPing(t, a, b.ip, 20*time.Second)

	got, ok, err := a.dev.PeerStats(b.pub)
	if err != nil || !ok {
		t.Fatalf("PeerStats(b) = ok %v, err %v", ok, err)
	}
	if got.LastHandshake.IsZero() || got.RxBytes == 0 || got.TxBytes == 0 {
		t.Fatalf("PeerStats(b) after a ping = %+v, want handshake and traffic", got)
	}
	if got.Endpoint != b.udpEndpoint() {
		t.Fatalf("endpoint %q, want %q", got.Endpoint, b.udpEndpoint())
	}
	all, err := a.dev.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := all[b.pub]; want.LastHandshake != got.LastHandshake || want.Endpoint != got.Endpoint {
		t.Fatalf("PeerStats %+v disagrees with Stats %+v", got, want)
	}

	other, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.dev.PeerStats(other.Public()); ok || err != nil {
		t.Fatalf("unknown peer: ok %v, err %v", ok, err)
	}
	if err := a.dev.RemovePeer(b.pub); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := a.dev.PeerStats(b.pub); ok || err != nil {
		t.Fatalf("removed peer: ok %v, err %v", ok, err)
	}
	if err := b.dev.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.dev.PeerStats(a.pub); ok || err != nil {
		t.Fatalf("closed device: ok %v, err %v", ok, err)
	}
}

// peerSection picks the right section of a multi-peer dump, including the
// first and the last, and never a key that only appears as a value.
func TestPeerSection(t *testing.T) {
	var k [3]keys.Public
	for i := range k {
		p, err := keys.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		k[i] = p.Public()
	}
	var missing keys.Public
	missing[0] = 7
	dump := strings.Join([]string{
		"private_key=" + strings.Repeat("11", 32),
		"listen_port=51820",
		"public_key=" + k[0].Hex(),
		"preshared_key=" + missing.Hex(),
		"endpoint=127.0.0.1:1",
		"rx_bytes=10",
		"tx_bytes=11",
		"last_handshake_time_sec=100",
		"last_handshake_time_nsec=5",
		"public_key=" + k[1].Hex(),
		"rx_bytes=20",
		"tx_bytes=21",
		"last_handshake_time_sec=0",
		"last_handshake_time_nsec=0",
		"public_key=" + k[2].Hex(),
		"endpoint=relay:abc@rel://x:1",
		"rx_bytes=30",
		"tx_bytes=31",
		"",
	}, "\n")
	tests := []struct {
		name string
		key  keys.Public
		ok   bool
		want PeerStats
	}{
		{"first", k[0], true, PeerStats{LastHandshake: time.Unix(100, 5), RxBytes: 10, TxBytes: 11, Endpoint: "127.0.0.1:1"}},
		{"middle", k[1], true, PeerStats{RxBytes: 20, TxBytes: 21}},
		{"last", k[2], true, PeerStats{RxBytes: 30, TxBytes: 31, Endpoint: "relay:abc@rel://x:1"}},
		{"only a value", missing, false, PeerStats{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := peerSection(dump, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.ok || !got.LastHandshake.Equal(tc.want.LastHandshake) || got.RxBytes != tc.want.RxBytes ||
				got.TxBytes != tc.want.TxBytes || got.Endpoint != tc.want.Endpoint {
				t.Fatalf("got %+v ok %v, want %+v ok %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, _, err := peerSection("public_key="+k[0].Hex()+"\nrx_bytes=x\n", k[0]); err == nil {
		t.Fatal("bad counter parsed without error")
	}
}
