package mapcache

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	mpb "petrel/proto/managementpb"
)

const url = "http://mgmt.example:8080"

func testKey(t *testing.T) keys.Private {
	t.Helper()
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sample() *Snapshot {
	now := time.Now().UTC().Truncate(time.Second)
	return &Snapshot{
		ManagementURL: url, SavedAt: now, FreshAt: now.Add(-time.Minute), WGPort: 51820,
		PeerConfig:   &mpb.PeerConfig{Address: "100.64.0.5/16", Fqdn: "alpha.petrel.internal", DnsLabel: "alpha"},
		ServerConfig: &mpb.ServerConfig{SignalUrl: "http://signal.example:10000"},
		Map: &mpb.NetworkMap{Peers: []*mpb.RemotePeer{{PublicKey: "AAAA", AllowedIps: []string{"100.64.0.7/32"},
			Fqdn: "bravo.petrel.internal", Name: "bravo"}}},
		Endpoints: map[string]Endpoint{"AAAA": {Addr: "192.0.2.7:51820", Seen: now}},
	}
}

func TestRoundTrip(t *testing.T) {
	k := testKey(t)
	path := filepath.Join(t.TempDir(), "map.cache")
	in := sample()
	if err := Save(path, in, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	out, err := Load(path, k, url)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(out.Map, in.Map) || !proto.Equal(out.PeerConfig, in.PeerConfig) || !proto.Equal(out.ServerConfig, in.ServerConfig) {
		t.Fatal("messages differ after round trip")
	}
	if out.WGPort != 51820 || !out.FreshAt.Equal(in.FreshAt) || out.Endpoints["AAAA"].Addr != "192.0.2.7:51820" {
		t.Fatalf("fields differ: %+v", out)
	}
}

// The file is sealed: names, addresses and tokens are not readable.
func TestSealedOnDisk(t *testing.T) {
	k := testKey(t)
	path := filepath.Join(t.TempDir(), "map.cache")
	s := sample()
	s.ServerConfig.Relay = &mpb.RelayConfig{Token: "relay-token-secret"}
	if err := Save(path, s, k); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, plain := range []string{"bravo", "100.64.0.7", "relay-token-secret", "192.0.2.7"} {
		if strings.Contains(string(b), plain) {
			t.Errorf("cache file shows %q in clear", plain)
		}
	}
}

func TestLoadRefusesBadFiles(t *testing.T) {
	k := testKey(t)
	dir := t.TempDir()
	good, err := Encode(sample(), k)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-5] ^= 1
	other, _ := Encode(sample(), testKey(t))
	cases := map[string][]byte{
		"empty":     {},
		"garbage":   []byte("hello, this is not a cache\n"),
		"truncated": good[:len(good)/2],
		"header":    good[:len(magic)],
		"flipped":   flipped,
		"other key": other,
	}
	for name, b := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := Load(path, k, url); err == nil {
			t.Errorf("%s: loaded %+v, want an error", name, s)
		} else if errors.Is(err, ErrNoCache) {
			t.Errorf("%s: ErrNoCache, want a corruption error", name)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ok"), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "ok"), k, "http://elsewhere:1"); err == nil {
		t.Error("cache for another management URL loaded")
	}
	if _, err := Load(filepath.Join(dir, "missing"), k, url); !errors.Is(err, ErrNoCache) {
		t.Errorf("missing file: %v, want ErrNoCache", err)
	}
}

func TestWriterCoalescesAndFlushesOnClose(t *testing.T) {
	k := testKey(t)
	path := filepath.Join(t.TempDir(), "map.cache")
	w := NewWriter(path, k, time.Hour, slog.New(slog.DiscardHandler))
	var builds atomic.Int32
	for i := range 100 {
		s := sample()
		s.WGPort = 1000 + i
		w.Update(func() *Snapshot { builds.Add(1); return s })
	}
	// The first update is written at once; the other 99 wait for the
	// interval (an hour) and collapse into one write at Close.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first snapshot never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.Close()
	if n := builds.Load(); n > 2 {
		t.Fatalf("%d snapshots built for 100 updates, want at most 2", n)
	}
	s, err := Load(path, k, url)
	if err != nil {
		t.Fatal(err)
	}
	if s.WGPort != 1099 {
		t.Fatalf("last written port %d, want the last update's 1099", s.WGPort)
	}
	w.Update(func() *Snapshot { t.Error("build after Close"); return nil })
	w.Close()
}

func FuzzDecode(f *testing.F) {
	k, _ := keys.NewPrivate()
	good, _ := Encode(sample(), k)
	f.Add(good)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Decode(b, k, url)
	})
}
