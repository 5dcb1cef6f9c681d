package oidcdevice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"petrel/internal/printable"
)

const (
	// maxBody bounds every answer read from the provider.
	maxBody = 1 << 20
	// maxText bounds a provider string quoted in an error, in runes.
	maxText = 200
	// maxSeconds bounds expires_in and interval (about 31 years), so a
	// hostile value cannot overflow a time.Duration.
	maxSeconds = 1e9
)

// wire sends the provider's requests: one HTTP client, one timeout per
// request, answers read up to maxBody.
type wire struct {
	hc      *http.Client
	timeout time.Duration
}

func newWire(hc *http.Client, timeout time.Duration) *wire {
	c := *hc // a copy, so the redirect rule below stays ours
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if err := checkURL("redirect target", req.URL.String()); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &wire{hc: &c, timeout: timeout}
}

// send makes one request (a POST of form when form is non-nil, else a
// GET) and returns the status and the body. A transport error is returned
// without the URL the caller names anyway.
func (w *wire) send(ctx context.Context, endpoint string, form url.Values) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	method, body := http.MethodGet, io.Reader(nil)
	if form != nil {
		method, body = http.MethodPost, strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
	if err != nil {
		return 0, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := w.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("read the answer: %w", err)
	}
	if len(b) > maxBody {
		return resp.StatusCode, nil, fmt.Errorf("the answer is larger than %d bytes", maxBody)
	}
	return resp.StatusCode, b, nil
}

// oauthError is an error answer of an OAuth endpoint (RFC 6749 section
// 5.2). Its strings come from the network; Error escapes and cuts them.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *oauthError) Error() string {
	if e.Description == "" {
		return clean(e.Code)
	}
	return clean(e.Code) + " (" + clean(e.Description) + ")"
}

// describe adds the provider's description to one of the sentinel errors.
func describe(err error, oe *oauthError) error {
	if oe.Description == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, clean(oe.Description))
}

// serverError is an answer that says "try later": a 5xx status or 429.
type serverError struct {
	status int
	oauth  *oauthError // the OAuth error in the body, if any
}

func (e *serverError) Error() string {
	s := "answered " + statusText(e.status)
	if e.oauth != nil {
		s += ": " + e.oauth.Error()
	}
	return s
}

func statusText(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// decode reads an answer into v: 5xx and 429 are a *serverError, a JSON
// object with an "error" member is an *oauthError (whatever the status,
// as some providers answer 200), any other status than 200 or a body that
// is not a JSON object is a plain error.
func decode(status int, body []byte, v any) error {
	var oe oauthError
	isOAuth := json.Unmarshal(body, &oe) == nil && oe.Code != ""
	if status >= 500 || status == http.StatusTooManyRequests {
		se := &serverError{status: status}
		if isOAuth {
			se.oauth = &oe
		}
		return se
	}
	if isOAuth {
		return &oe
	}
	if status != http.StatusOK {
		return fmt.Errorf("answered %s without an OAuth error", statusText(status))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("the answer is not a JSON object: %w", err)
	}
	return nil
}

// seconds is a JSON duration in seconds: a number, or a string holding
// one (some providers quote it). Fractions are dropped.
type seconds int64

func (s *seconds) UnmarshalJSON(b []byte) error {
	var n json.Number
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		n = json.Number(str)
	} else if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > maxSeconds {
		return fmt.Errorf("%q is not a number of seconds", clean(string(n)))
	}
	*s = seconds(f)
	return nil
}

func (s seconds) duration() time.Duration { return time.Duration(s) * time.Second }

// checkURL accepts an absolute https URL, or an http one whose host is a
// loopback address or "localhost" (a provider on the same machine, as in
// tests): anything else would send codes and tokens in the clear.
func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute URL", what, clean(raw))
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("%s %s: https is required (plain http only on loopback)", what, clean(raw))
	}
	return fmt.Errorf("%s %s: not an https URL", what, clean(raw))
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// clean makes a string from the network fit for an error or a terminal:
// cut to maxText runes, then escaped.
func clean(s string) string {
	if utf8.RuneCountInString(s) > maxText {
		i, n := 0, 0
		for i = range s {
			if n == maxText {
				break
			}
			n++
		}
		s = s[:i] + "…"
	}
	return printable.Escape(s)
}
