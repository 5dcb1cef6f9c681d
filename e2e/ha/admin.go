package ha

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// admin calls the REST API through the proxy, one connection per request
// (so requests spread over the instances, and one to a killed instance
// costs one retry).
type admin struct {
	base, token string
	hc          *http.Client

	sims, reals string // group IDs: simulated and real agents
	policy      string // the rig policy's ID
}

func newAdmin(proxyAddr, token string) *admin {
	tr := &http.Transport{DisableKeepAlives: true}
	return &admin{base: "http://" + proxyAddr, token: token, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends one request; transport errors and 5xx answers are retried for
// up to a minute (an instance killed under the request).
func (a *admin) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	var last error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := a.hc.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			last = err
			continue
		case resp.StatusCode >= 500:
			last = fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
			continue
		case resp.StatusCode/100 != 2:
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
		}
		if out != nil {
			return json.Unmarshal(b, out)
		}
		return nil
	}
	return fmt.Errorf("%s %s: gave up after a minute: %w", method, path, last)
}

type idName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// basePort + seq is the TCP port of the rig policy's rule at change seq:
// every agent's map shows which change it holds.
const basePort = 10000

// policyBody is the rig policy at change seq: simulated agents reach each
// other on TCP port basePort+seq, real agents ping each other. The two
// sets do not see each other, as two teams of one account would not.
func (a *admin) policyBody(seq int) any {
	return map[string]any{"name": "ha-rig", "enabled": true, "rules": []any{map[string]any{
		"name": "rig", "sources": []string{a.sims}, "destinations": []string{a.sims}, "protocol": "tcp",
		"ports": []string{strconv.Itoa(basePort + seq)}, "bidirectional": true, "action": "accept",
	}, map[string]any{
		"name": "ping", "sources": []string{a.reals}, "destinations": []string{a.reals}, "protocol": "icmp",
		"bidirectional": true, "action": "accept",
	}}}
}

// setup replaces every policy with the rig policy (change 0) and returns
// reusable setup keys for the simulated and the real agents.
func (a *admin) setup(ctx context.Context) (simKey, realKey string, err error) {
	for _, g := range []struct {
		name string
		id   *string
	}{{"sims", &a.sims}, {"reals", &a.reals}} {
		var out idName
		if err := a.do(ctx, "POST", "/api/groups", map[string]any{"name": g.name}, &out); err != nil {
			return "", "", err
		}
		*g.id = out.ID
	}
	var pols []idName
	if err := a.do(ctx, "GET", "/api/policies", nil, &pols); err != nil {
		return "", "", err
	}
	var p idName
	if err := a.do(ctx, "POST", "/api/policies", a.policyBody(0), &p); err != nil {
		return "", "", err
	}
	a.policy = p.ID
	for _, old := range pols {
		if err := a.do(ctx, "DELETE", "/api/policies/"+old.ID, nil, nil); err != nil {
			return "", "", err
		}
	}
	key := func(name, group string) (string, error) {
		var k struct {
			Key string `json:"key"`
		}
		err := a.do(ctx, "POST", "/api/setup-keys", map[string]any{"name": name, "reusable": true, "auto_groups": []string{group}}, &k)
		return k.Key, err
	}
	if simKey, err = key("sims", a.sims); err != nil {
		return "", "", err
	}
	realKey, err = key("reals", a.reals)
	return simKey, realKey, err
}

// changer is the admin loop: one policy change every interval, each
// acknowledged change's sequence number published in acked.
type changer struct {
	a        *admin
	interval time.Duration
	acked    atomic.Int64 // highest change the API acknowledged
	stopc    chan struct{}
	wg       sync.WaitGroup

	mu      sync.Mutex // held for a change
	paused  bool
	seq     int // next change
	errs    int // changes that failed for a minute
	lastErr error
}

func startChanger(a *admin, interval time.Duration) *changer {
	c := &changer{a: a, interval: interval, seq: 1, stopc: make(chan struct{})}
	c.wg.Add(1)
	go c.loop()
	return c
}

func (c *changer) loop() {
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-c.stopc; cancel() }()
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-c.stopc:
			return
		case <-t.C:
		}
		c.mu.Lock()
		if !c.paused {
			if err := c.changeLocked(ctx); err != nil && ctx.Err() == nil {
				c.errs++
				c.lastErr = err
			}
		}
		c.mu.Unlock()
	}
}

// change makes the next change now (paused or not) and returns its
// sequence number once acknowledged.
func (c *changer) change(ctx context.Context) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.changeLocked(ctx)
	return c.seq - 1, err
}

// changeLocked makes the next change; c.mu is held.
func (c *changer) changeLocked(ctx context.Context) error {
	seq := c.seq
	if err := c.a.do(ctx, "PUT", "/api/policies/"+c.a.policy, c.a.policyBody(seq), nil); err != nil {
		return err
	}
	c.seq++
	c.acked.Store(int64(seq))
	return nil
}

// pause stops the loop's changes (after waiting for one in flight).
func (c *changer) pause() {
	c.mu.Lock()
	c.paused = true
	c.mu.Unlock()
}

// failures reports the changes that failed and the last error.
func (c *changer) failures() (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errs, c.lastErr
}

func (c *changer) stop() {
	close(c.stopc)
	c.wg.Wait()
}
