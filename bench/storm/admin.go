package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// adminClient calls the admin REST API with the admin token: the real
// mutation path for groups, setup keys, policies and peer deletions.
type adminClient struct {
	base  string
	token string
	hc    *http.Client
}

// maxRESTConns bounds the REST client's connections: with the gRPC pool
// they must stay under the server's 64 connections per source address.
const maxRESTConns = 8

func newAdminClient(addr, token string) *adminClient {
	tr := &http.Transport{MaxConnsPerHost: maxRESTConns, MaxIdleConnsPerHost: maxRESTConns, IdleConnTimeout: time.Minute}
	return &adminClient{base: "http://" + addr, token: token, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

func (c *adminClient) close() { c.hc.CloseIdleConnections() }

// do sends in (if not nil) as JSON and decodes a 2xx answer into out (if
// not nil); any other status is an error carrying the server's message.
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Code string }
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

type idName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type ruleBody struct {
	Name          string   `json:"name"`
	Sources       []string `json:"sources"`
	Destinations  []string `json:"destinations"`
	Protocol      string   `json:"protocol"`
	Ports         []string `json:"ports,omitempty"`
	Bidirectional bool     `json:"bidirectional"`
	Action        string   `json:"action"`
}

type policyBody struct {
	Name    string     `json:"name"`
	Enabled bool       `json:"enabled"`
	Rules   []ruleBody `json:"rules"`
}

// topology is the account the storm runs in. Agents are split into an
// infra group (a small fraction; every peer reaches it, so infra agents
// see every peer and hold the full N-peer map) and teams of -team-size
// (each sees its own team and infra). The storm policy has a rule All ->
// infra on TCP port stormBasePort+seq, so every change of it reaches every
// agent and tells it which change it got, and (with two teams or more) a
// rule joining a pair of teams that moves with every change, so changes
// also add and remove peers. In the mesh topology the default All <-> All
// policy stays and the storm rule is All -> All.
type topology struct {
	mesh    bool
	all     string   // the All group's ID
	infra   string   // group ID
	teams   []string // group IDs
	keys    map[int]string
	stormID string
}

// stormBasePort + seq is the storm policy's port after change seq.
const stormBasePort = 10000

// infraTeam is the team index of infra agents.
const infraTeam = -1

// keyFor returns the setup key that registers into team (infraTeam: infra).
func (t *topology) keyFor(team int) string { return t.keys[team] }

// stormPolicy is the storm policy's body after change seq; the moving
// pair is chosen from seq.
func (t *topology) stormPolicy(seq int) policyBody {
	port := []string{strconv.Itoa(stormBasePort + seq)}
	if t.mesh {
		return policyBody{Name: "storm", Enabled: true, Rules: []ruleBody{
			{Name: "storm-port", Sources: []string{t.all}, Destinations: []string{t.all}, Protocol: "tcp", Ports: port, Action: "accept"},
		}}
	}
	p := policyBody{Name: "storm", Enabled: true, Rules: []ruleBody{
		{Name: "storm-port", Sources: []string{t.all}, Destinations: []string{t.infra}, Protocol: "tcp", Ports: port, Action: "accept"},
	}}
	if n := len(t.teams); n >= 2 {
		a := seq % n
		b := (a + 1 + (seq/n)%(n-1)) % n
		p.Rules = append(p.Rules, ruleBody{Name: "storm-pair", Sources: []string{t.teams[a]}, Destinations: []string{t.teams[b]},
			Protocol: "tcp", Ports: port, Bidirectional: true, Action: "accept"})
	}
	return p
}

// setupTopology creates the groups, setup keys and policies through REST.
func setupTopology(ctx context.Context, api *adminClient, mesh bool, teams int) (*topology, error) {
	t := &topology{mesh: mesh, keys: map[int]string{}}
	var groups []idName
	if err := api.do(ctx, "GET", "/api/groups", nil, &groups); err != nil {
		return nil, err
	}
	for _, g := range groups {
		if g.Name == "All" {
			t.all = g.ID
		}
	}
	if t.all == "" {
		return nil, errors.New("setup: no All group")
	}
	if !mesh {
		var pols []idName
		if err := api.do(ctx, "GET", "/api/policies", nil, &pols); err != nil {
			return nil, err
		}
		for _, p := range pols {
			if err := api.do(ctx, "DELETE", "/api/policies/"+p.ID, nil, nil); err != nil {
				return nil, err
			}
		}
	}
	newGroup := func(name string) (string, error) {
		var g idName
		err := api.do(ctx, "POST", "/api/groups", map[string]any{"name": name, "peers": []string{}}, &g)
		return g.ID, err
	}
	newKey := func(team int, group string) error {
		var k struct {
			Key string `json:"key"`
		}
		err := api.do(ctx, "POST", "/api/setup-keys", map[string]any{"name": "storm-" + group, "reusable": true, "auto_groups": []string{group}}, &k)
		t.keys[team] = k.Key
		return err
	}
	var err error
	if t.infra, err = newGroup("infra"); err != nil {
		return nil, err
	}
	if err := newKey(infraTeam, t.infra); err != nil {
		return nil, err
	}
	for i := range teams {
		id, err := newGroup(fmt.Sprintf("team-%03d", i))
		if err != nil {
			return nil, err
		}
		t.teams = append(t.teams, id)
		if err := newKey(i, id); err != nil {
			return nil, err
		}
		if mesh {
			continue
		}
		err = api.do(ctx, "POST", "/api/policies", policyBody{Name: fmt.Sprintf("team-%03d", i), Enabled: true, Rules: []ruleBody{
			{Name: "intra", Sources: []string{id}, Destinations: []string{id}, Protocol: "all", Bidirectional: true, Action: "accept"},
		}}, nil)
		if err != nil {
			return nil, err
		}
	}
	if !mesh {
		err := api.do(ctx, "POST", "/api/policies", policyBody{Name: "infra", Enabled: true, Rules: []ruleBody{
			{Name: "to-infra", Sources: []string{t.all}, Destinations: []string{t.infra}, Protocol: "all", Bidirectional: true, Action: "accept"},
		}}, nil)
		if err != nil {
			return nil, err
		}
	}
	var storm idName
	if err := api.do(ctx, "POST", "/api/policies", t.stormPolicy(0), &storm); err != nil {
		return nil, err
	}
	t.stormID = storm.ID
	return t, nil
}
