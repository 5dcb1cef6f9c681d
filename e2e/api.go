package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
)

// API calls the management REST API as the admin (token from the data
// dir); the connection is made from inside the server's namespace. in is
// JSON-encoded when not nil; out, when not nil, receives the decoded answer.
func (c *Cluster) API(ctx context.Context, method, path string, in, out any) error {
	tok, err := os.ReadFile(c.tokenFile())
	if err != nil {
		return fmt.Errorf("read admin token: %w", err)
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.serverURL()+path, body)
	if err != nil {
		return fmt.Errorf("build %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return c.CP.Server.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return nil
}

// AllowAll creates a policy that lets every peer reach every other peer
// (a new account denies everything).
func (c *Cluster) AllowAll(ctx context.Context) error {
	return c.API(ctx, "POST", "/api/policies", map[string]any{
		"name": "allow-all", "enabled": true,
		"rules": []map[string]any{{"sources": []string{"All"}, "destinations": []string{"All"},
			"protocol": "all", "bidirectional": true, "action": "accept"}},
	}, nil)
}
