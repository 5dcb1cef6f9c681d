package policyfile

import (
	"context"
	"fmt"
)

// Client is the REST API (/api, docs/server-cli.md) as a plan uses it,
// called as one principal whose permissions apply to every call.
// petrel-server's CLI implements it over HTTP with a token; the dashboard
// in-process as the signed-in user.
type Client interface {
	// Get decodes the JSON answer of GET path (a collection such as
	// /api/groups, or /api/dns/settings) into out. An answer other than
	// 2xx is an error carrying the server's message.
	Get(ctx context.Context, path string, out any) error
	// Send sends method (POST, PATCH or DELETE) to path with body (JSON of
	// media type contentType; nil and "" for none) and returns the body of
	// a 2xx answer. Any other answer is an error carrying the server's
	// message, and the server has changed nothing.
	Send(ctx context.Context, method, path string, body []byte, contentType string) ([]byte, error)
}

// Media types of request bodies Apply sends.
const (
	MediaJSON       = "application/json"
	MediaMergePatch = "application/merge-patch+json"
)

// The live state as the REST API returns it (the members apply compares).

type liveRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type liveGroup struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Peers    []liveRef `json:"peers"`
	Implicit bool      `json:"implicit"`
}

type livePeer struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	DNSLabel string `json:"dns_label"`
	IP       string `json:"ip"`
	FQDN     string `json:"fqdn"`
}

type livePolicy struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Enabled     bool       `json:"enabled"`
	Rules       []liveRule `json:"rules"`
}

type liveRule struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Sources       []liveRef `json:"sources"`
	Destinations  []liveRef `json:"destinations"`
	Protocol      string    `json:"protocol"`
	Ports         []string  `json:"ports"`
	Bidirectional bool      `json:"bidirectional"`
	Action        string    `json:"action"`
}

type liveRoute struct {
	ID          string    `json:"id"`
	Description string    `json:"description"`
	NetworkID   string    `json:"network_id"`
	Network     string    `json:"network"`
	Peer        *liveRef  `json:"peer"`
	PeerGroups  []liveRef `json:"peer_groups"`
	Groups      []liveRef `json:"groups"`
	Metric      int       `json:"metric"`
	Masquerade  bool      `json:"masquerade"`
	Enabled     bool      `json:"enabled"`
	AutoApply   bool      `json:"auto_apply"`
}

type liveNameserver struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Nameservers []string  `json:"nameservers"`
	Domains     []string  `json:"domains"`
	Primary     bool      `json:"primary"`
	Groups      []liveRef `json:"groups"`
	Enabled     bool      `json:"enabled"`
}

type liveZone struct {
	ID      string   `json:"id"`
	Domain  string   `json:"domain"`
	Records []Record `json:"records"`
}

type liveSetupKey struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	AutoGroups []liveRef `json:"auto_groups"`
}

// Live is the live state a plan compares with: every collection the file
// manages, plus the peers and setup keys it must check.
type Live struct {
	groups      []liveGroup
	peers       []livePeer
	policies    []livePolicy
	routes      []liveRoute
	nameservers []liveNameserver
	zones       []liveZone
	settings    Settings
	setupKeys   []liveSetupKey
}

// FetchLive reads every collection a plan compares or must check.
func FetchLive(ctx context.Context, c Client) (*Live, error) {
	var ls Live
	var settings struct {
		DNSDomain string `json:"dns_domain"`
	}
	for _, g := range []struct {
		path string
		out  any
	}{
		{"/api/groups", &ls.groups}, {"/api/peers", &ls.peers}, {"/api/policies", &ls.policies},
		{"/api/routes", &ls.routes}, {"/api/dns/nameservers", &ls.nameservers}, {"/api/dns/zones", &ls.zones},
		{"/api/dns/settings", &settings}, {"/api/setup-keys", &ls.setupKeys},
	} {
		if err := c.Get(ctx, g.path, g.out); err != nil {
			return nil, fmt.Errorf("read the live state: %w", err)
		}
	}
	ls.settings.DNSDomain = settings.DNSDomain
	return &ls, nil
}
