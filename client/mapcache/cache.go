package mapcache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/protobuf/proto"

	"petrel/internal/keys"
	"petrel/internal/seal"
	mpb "petrel/proto/managementpb"
)

// magic starts every cache file; the digit is the format version.
const magic = "petrel-map-cache 1\n"

// MaxFile bounds the size of a cache file Load reads.
const MaxFile = seal.MaxMessage

// ErrNoCache is returned by Load when there is no cache file.
var ErrNoCache = errors.New("no map cache")

// Snapshot is what the agent knew when it last saved.
type Snapshot struct {
	ManagementURL string
	SavedAt       time.Time
	// FreshAt is the last moment the map was known current (the Sync
	// stream was up).
	FreshAt      time.Time
	WGPort       int
	PeerConfig   *mpb.PeerConfig
	ServerConfig *mpb.ServerConfig
	Map          *mpb.NetworkMap
	// Endpoints maps a peer's public key (base64) to its last working
	// direct endpoint.
	Endpoints map[string]Endpoint
}

// Endpoint is a direct UDP endpoint that carried a WireGuard handshake.
type Endpoint struct {
	Addr string    `json:"addr"` // "ip:port"
	Seen time.Time `json:"seen"` // last handshake over it
}

// file is the sealed JSON body; proto messages as their wire bytes.
type file struct {
	Owner         string              `json:"owner"` // public key the cache belongs to
	ManagementURL string              `json:"management_url"`
	SavedAt       time.Time           `json:"saved_at"`
	FreshAt       time.Time           `json:"fresh_at"`
	WGPort        int                 `json:"wg_port"`
	PeerConfig    []byte              `json:"peer_config"`
	ServerConfig  []byte              `json:"server_config"`
	Map           []byte              `json:"map"`
	Endpoints     map[string]Endpoint `json:"endpoints,omitempty"`
}

// Encode seals s to key.
func Encode(s *Snapshot, key keys.Private) ([]byte, error) {
	f := file{Owner: key.Public().String(), ManagementURL: s.ManagementURL, SavedAt: s.SavedAt.UTC(),
		FreshAt: s.FreshAt.UTC(), WGPort: s.WGPort, Endpoints: s.Endpoints}
	var err error
	if f.PeerConfig, err = marshal(s.PeerConfig); err != nil {
		return nil, err
	}
	if f.ServerConfig, err = marshal(s.ServerConfig); err != nil {
		return nil, err
	}
	if f.Map, err = marshal(s.Map); err != nil {
		return nil, err
	}
	body, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode map cache: %w", err)
	}
	if len(body) > seal.MaxMessage {
		return nil, fmt.Errorf("encode map cache: %d bytes is over the %d-byte limit", len(body), seal.MaxMessage)
	}
	sealed, err := seal.Seal(body, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("seal map cache: %w", err)
	}
	return append([]byte(magic), sealed...), nil
}

func marshal(m proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode map cache: %w", err)
	}
	return b, nil
}

// Decode opens a cache file sealed to key and checks it belongs to key and
// managementURL.
func Decode(b []byte, key keys.Private, managementURL string) (*Snapshot, error) {
	rest, ok := bytes.CutPrefix(b, []byte(magic))
	if !ok {
		return nil, errors.New("not a petrel map cache (bad header)")
	}
	body, err := seal.Open(rest, key.Public(), key)
	if err != nil {
		return nil, errors.New("map cache does not open with this agent's key (truncated, corrupt, or another key's)")
	}
	var f file
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, fmt.Errorf("parse map cache: %w", err)
	}
	if f.Owner != key.Public().String() {
		return nil, errors.New("map cache belongs to another key")
	}
	if f.ManagementURL != managementURL {
		return nil, fmt.Errorf("map cache is for management %q, not %q", f.ManagementURL, managementURL)
	}
	s := &Snapshot{ManagementURL: f.ManagementURL, SavedAt: f.SavedAt, FreshAt: f.FreshAt, WGPort: f.WGPort,
		PeerConfig: &mpb.PeerConfig{}, ServerConfig: &mpb.ServerConfig{}, Map: &mpb.NetworkMap{}, Endpoints: f.Endpoints}
	for _, p := range []struct {
		b []byte
		m proto.Message
		n string
	}{{f.PeerConfig, s.PeerConfig, "peer config"}, {f.ServerConfig, s.ServerConfig, "server config"}, {f.Map, s.Map, "network map"}} {
		if err := proto.Unmarshal(p.b, p.m); err != nil {
			return nil, fmt.Errorf("parse map cache %s: %w", p.n, err)
		}
	}
	if f.WGPort < 0 || f.WGPort > 65535 {
		return nil, fmt.Errorf("map cache: bad WireGuard port %d", f.WGPort)
	}
	if s.PeerConfig.GetAddress() == "" {
		return nil, errors.New("map cache has no overlay address")
	}
	return s, nil
}

// Save writes s to path atomically (mode 0600).
func Save(path string, s *Snapshot, key keys.Private) error {
	b, err := Encode(s, key)
	if err != nil {
		return err
	}
	if err := keys.WriteFileAtomic(path, b, 0o600); err != nil {
		return fmt.Errorf("save map cache: %w", err)
	}
	return nil
}

// Load reads the cache at path. A missing file is ErrNoCache.
func Load(path string, key keys.Private, managementURL string) (*Snapshot, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoCache
	}
	if err != nil {
		return nil, fmt.Errorf("read map cache: %w", err)
	}
	defer f.Close()
	b := make([]byte, 0, 64<<10)
	buf := bytes.NewBuffer(b)
	n, err := buf.ReadFrom(io.LimitReader(f, MaxFile+int64(len(magic))+seal.Overhead+1))
	if err != nil {
		return nil, fmt.Errorf("read map cache: %w", err)
	}
	if n > MaxFile+int64(len(magic))+seal.Overhead {
		return nil, fmt.Errorf("map cache %s is larger than %d bytes", path, MaxFile)
	}
	s, err := Decode(buf.Bytes(), key, managementURL)
	if err != nil {
		return nil, fmt.Errorf("map cache %s: %w", path, err)
	}
	return s, nil
}
