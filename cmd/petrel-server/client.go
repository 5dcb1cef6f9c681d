package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"petrel/internal/printable"
	"petrel/internal/tlstrust"
)

// clientFlags are the flags every admin subcommand shares.
type clientFlags struct {
	server    string
	tokenFile string
	caFile    string
	timeout   time.Duration
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", "http://127.0.0.1:8080", "petrel-server URL")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the admin token (DATA_DIR/admin-token of the server) (required)")
	cmd.Flags().StringVar(&f.caFile, "ca-file", "", "PEM file of the CA certificates to trust for an https:// --server (default: the system roots)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "request timeout")
}

// adminClient calls the REST API with the admin token.
type adminClient struct {
	base      *url.URL
	token     string
	tokenFile string
	http      *http.Client
}

// client validates the flags and reads the token file.
func (f *clientFlags) client() (*adminClient, error) {
	u, err := url.Parse(strings.TrimSuffix(f.server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("--server %q: want http://HOST:PORT or https://HOST[:PORT]", f.server)}
	}
	if f.tokenFile == "" {
		return nil, usageError{errors.New("--token-file is required (the admin-token file in the server's data directory)")}
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return nil, fmt.Errorf("token file %s does not hold a token", f.tokenFile)
	}
	hc, err := f.httpClient(u)
	if err != nil {
		return nil, err
	}
	return &adminClient{base: u, token: token, tokenFile: f.tokenFile, http: hc}, nil
}

// httpClient checks the server's certificate against --ca-file when given
// (the system roots otherwise).
func (f *clientFlags) httpClient(u *url.URL) (*http.Client, error) {
	if f.caFile == "" {
		return &http.Client{Timeout: f.timeout}, nil
	}
	if u.Scheme != "https" {
		return nil, usageError{fmt.Errorf("--ca-file is for an https:// --server, not %s", u)}
	}
	roots, err := tlstrust.LoadRoots(f.caFile)
	if err != nil {
		return nil, usageError{fmt.Errorf("--ca-file: %w", err)}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlstrust.ClientConfig(roots, "")
	return &http.Client{Timeout: f.timeout, Transport: tr}, nil
}

// apiError is an error answer of the REST API.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered %d", e.Status)
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, e.Message)
}

// send sends body (nil for none) as contentType and returns the raw
// response body of a 2xx answer; any other answer is an *apiError with the
// server's own message.
func (c *adminClient) send(ctx context.Context, method, path string, in []byte, contentType string) ([]byte, error) {
	var body io.Reader
	if in != nil {
		body = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ce := tlstrust.Explain(err); ce != nil {
			return nil, fmt.Errorf("server %s: %w", c.base, ce)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("server %s did not answer in time: %w", c.base, err)
		}
		return nil, fmt.Errorf("server unreachable at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		var eb struct {
			Error string `json:"error"`
		}
		why := "token rejected"
		if json.Unmarshal(out, &eb) == nil && eb.Error != "" {
			why = eb.Error
		}
		return nil, fmt.Errorf("%s by %s (check the admin or access token in --token-file %s)", why, c.base, c.tokenFile)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		var eb struct {
			Error string `json:"error"`
			Code  string `json:"code"`
		}
		if json.Unmarshal(out, &eb) == nil && eb.Error != "" {
			e.Message, e.Code = eb.Error, eb.Code
		} else {
			e.Message = strings.TrimSpace(string(out[:min(len(out), 200)]))
		}
		return nil, e
	}
	return out, nil
}

// printJSON pretty-prints a raw JSON document.
func printJSON(w io.Writer, raw []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// nameJSON is a reference in a REST answer, of which the CLI shows the name.
type nameJSON struct {
	Name string `json:"name"`
}

// joinNames lists the names comma-separated.
func joinNames(refs []nameJSON) string {
	names := make([]string, 0, len(refs))
	for _, r := range refs {
		names = append(names, r.Name)
	}
	return strings.Join(names, ",")
}

// escapeCells escapes each tab-separated cell of a table row: names and
// OS strings come from agents and must not print control characters.
func escapeCells(row string) string {
	cells := strings.Split(row, "\t")
	for i, c := range cells {
		cells[i] = printable.Escape(c)
	}
	return strings.Join(cells, "\t")
}
