package wg

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"petrel/internal/keys"
)

func TestParseEndpoint(t *testing.T) {
	_, pub := newKey(t)
	relay := RelayEndpointString(pub, "rels://eu-1.relay.example.net:443")
	tests := []struct {
		in    string
		ok    bool
		relay bool
	}{
		{"127.0.0.1:51820", true, false},
		{"[::1]:51820", true, false},
		{"[::ffff:127.0.0.1]:1", true, false},
		{relay, true, true},
		{"relay:" + pub.String(), false, false},
		{"relay:notakey@rel://x", false, false},
		{"relay:" + keys.Public{}.String() + "@rel://x", false, false},
		{"relay:" + pub.String() + "@", false, false},
		{"relay:" + pub.String() + "@rel://x\nprivate_key=00", false, false},
		{"127.0.0.1:0", false, false},
		{"0.0.0.0:1", false, false},
		{"[fe80::1%eth0]:1", false, false},
		{"host.example:1", false, false},
		{"", false, false},
	}
	for _, tc := range tests {
		ep, err := ParseEndpoint(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err = %v", tc.in, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrBadEndpoint) {
				t.Errorf("%q: error %v is not ErrBadEndpoint", tc.in, err)
			}
			continue
		}
		if _, isRelay := ep.(*RelayEndpoint); isRelay != tc.relay {
			t.Errorf("%q: relay = %v", tc.in, isRelay)
		}
		if ep2, err := ParseEndpoint(ep.DstToString()); err != nil || ep2.DstToString() != ep.DstToString() {
			t.Errorf("%q: round trip %v", tc.in, err)
		}
	}
	if ep, _ := ParseEndpoint("[::ffff:127.0.0.1]:1"); ep.DstToString() != "127.0.0.1:1" {
		t.Errorf("v4-mapped not unmapped: %s", ep.DstToString())
	}
}

func FuzzParseEndpoint(f *testing.F) {
	_, pub := newKey(f)
	f.Add("127.0.0.1:51820")
	f.Add("[2001:db8::1]:443")
	f.Add(RelayEndpointString(pub, "rel://relay.example:80"))
	f.Add("relay:@")
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := ParseEndpoint(s)
		if err != nil {
			return
		}
		out := ep.DstToString()
		if strings.ContainsAny(out, "\n\r ") {
			t.Fatalf("endpoint %q would break the UAPI", out)
		}
		ep2, err := ParseEndpoint(out)
		if err != nil || ep2.DstToString() != out {
			t.Fatalf("round trip of %q: %q, %v", s, out, err)
		}
	})
}

func TestParseStats(t *testing.T) {
	_, p1 := newKey(t)
	_, p2 := newKey(t)
	in := "private_key=00\nlisten_port=1\npublic_key=" + p1.Hex() + "\nendpoint=127.0.0.1:5\n" +
		"last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\nrx_bytes=10\ntx_bytes=20\n" +
		"allowed_ip=100.64.0.7/32\nallowed_ip=10.20.0.0/24\n" +
		"public_key=" + p2.Hex() + "\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\nrx_bytes=0\ntx_bytes=0\nerrno=0\n"
	st, err := parseStats(in)
	if err != nil {
		t.Fatal(err)
	}
	want1 := PeerStats{LastHandshake: time.Unix(1700000000, 5), RxBytes: 10, TxBytes: 20, Endpoint: "127.0.0.1:5",
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.7/32"), netip.MustParsePrefix("10.20.0.0/24")}}
	if !reflect.DeepEqual(st[p1], want1) || !reflect.DeepEqual(st[p2], PeerStats{}) || len(st) != 2 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := parseStats("public_key=zz\n"); err == nil {
		t.Fatal("bad key accepted")
	}
	if _, err := parseStats("public_key=" + p1.Hex() + "\nrx_bytes=-1\n"); err == nil {
		t.Fatal("bad counter accepted")
	}
}
