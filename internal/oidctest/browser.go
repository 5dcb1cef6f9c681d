package oidctest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// ApproveDevice signs in as subject on the provider's approval pages and
// allows the device that shows userCode: it opens the page, fills in the
// code, the user's credentials and the consent form and submits each over
// HTTP, as a browser would.
func (p *Provider) ApproveDevice(t testing.TB, userCode, subject string) {
	t.Helper()
	if err := p.approve(userCode, subject, p.Password(t, subject), "allow"); err != nil {
		t.Fatal(err)
	}
}

// DenyDevice signs in as subject and denies the device.
func (p *Provider) DenyDevice(t testing.TB, userCode, subject string) {
	t.Helper()
	if err := p.approve(userCode, subject, p.Password(t, subject), "deny"); err != nil {
		t.Fatal(err)
	}
}

// approve walks the pages; an error carries the page's error text.
func (p *Provider) approve(userCode, username, password, action string) error {
	b, err := p.newBrowser()
	if err != nil {
		return err
	}
	defer b.c.CloseIdleConnections()
	pg, err := b.get(p.DeviceURL())
	if err != nil {
		return err
	}
	if pg, err = b.submit(pg, map[string]string{"user_code": userCode}, ""); err != nil {
		return fmt.Errorf("enter user code: %w", err)
	}
	if pg, err = b.submit(pg, map[string]string{"username": username, "password": password}, ""); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	if pg, err = b.submit(pg, nil, action); err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	if pg.find("result") == "" {
		return fmt.Errorf("%s: no result on the final page", action)
	}
	return nil
}

// AuthorizeCode plays the browser of the code flow at the provider: it
// opens authURL (the client's authorization request, as the client
// redirected the browser to it), signs in as subject on the login page and
// returns the URL the provider then sends the browser to: the client's
// redirect URI with code and state (or with an error). That URL is not
// opened: the test delivers it to its client.
func (p *Provider) AuthorizeCode(t testing.TB, authURL, subject string) string {
	t.Helper()
	to, err := p.authorize(authURL, subject, p.Password(t, subject), "allow")
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// DenyCode opens authURL and presses Deny on the login page; it returns
// the redirect to the client (error=access_denied).
func (p *Provider) DenyCode(t testing.TB, authURL string) string {
	t.Helper()
	to, err := p.authorize(authURL, "", "", "deny")
	if err != nil {
		t.Fatal(err)
	}
	return to
}

func (p *Provider) authorize(authURL, username, password, action string) (string, error) {
	b, err := p.newBrowser()
	if err != nil {
		return "", err
	}
	defer b.c.CloseIdleConnections()
	pg, err := b.get(authURL)
	if err != nil {
		return "", err
	}
	if pg.redirect != "" {
		return pg.redirect, nil // refused before the login page (an error for the client)
	}
	values := map[string]string{"username": username, "password": password}
	if pg, err = b.submit(pg, values, action); err != nil {
		return "", fmt.Errorf("sign in: %w", err)
	}
	if pg.redirect == "" {
		return "", fmt.Errorf("sign in: no redirect to the client from %s", pg.url)
	}
	return pg.redirect, nil
}

// browser is an HTTP client with cookies that fills in and submits forms.
// It follows redirects within the provider only; a redirect elsewhere (to
// a client) ends a request with page.redirect set.
type browser struct{ c *http.Client }

func (p *Provider) newBrowser() (*browser, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	host := p.srv.Listener.Addr().String()
	return &browser{c: &http.Client{
		Jar:       jar,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.ca.Pool(), MinVersion: tls.VersionTLS12}},
		Timeout:   p.client.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != host {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}}, nil
}

// page is a fetched HTML page and its first form, or the redirect that
// left the provider.
type page struct {
	url      *url.URL
	root     *html.Node
	form     *html.Node
	errMsg   string
	redirect string
}

func (b *browser) get(u string) (*page, error) { return b.do(http.MethodGet, u, nil) }

func (b *browser) do(method, u string, form url.Values) (*page, error) {
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(method, u, nil)
	}
	if err != nil {
		return nil, err
	}
	resp, err := b.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		to, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("%s %s: bad Location: %w", method, u, err)
		}
		return &page{url: resp.Request.URL, redirect: to.String()}, nil
	}
	root, err := html.Parse(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", u, err)
	}
	pg := &page{url: resp.Request.URL, root: root}
	pg.form = findNode(root, func(n *html.Node) bool { return n.Data == "form" })
	pg.errMsg = pg.find("error")
	if resp.StatusCode != http.StatusOK {
		return pg, fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, pg.errMsg)
	}
	return pg, nil
}

// submit fills the page's form (values for named inputs; button is the
// value of the submit button pressed, "" for a form without a choice) and
// sends it to the form's action with the form's method.
func (b *browser) submit(pg *page, values map[string]string, button string) (*page, error) {
	if pg.form == nil {
		return nil, fmt.Errorf("no form on %s", pg.url)
	}
	form := url.Values{}
	seen := map[string]bool{}
	var pressed bool
	walk(pg.form, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		name := attr(n, "name")
		switch {
		case n.Data == "input" && name != "":
			v := attr(n, "value")
			if nv, ok := values[name]; ok {
				v = nv
			}
			form.Set(name, v)
			seen[name] = true
		case n.Data == "button" && name != "" && attr(n, "value") == button:
			form.Set(name, button)
			pressed = true
		}
	})
	for name := range values {
		if !seen[name] {
			return nil, fmt.Errorf("form on %s has no field %q", pg.url, name)
		}
	}
	if button != "" && !pressed {
		return nil, fmt.Errorf("form on %s has no %q button", pg.url, button)
	}
	action, err := pg.url.Parse(attr(pg.form, "action"))
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(attr(pg.form, "method"), http.MethodPost) {
		return b.do(http.MethodPost, action.String(), form)
	}
	action.RawQuery = form.Encode()
	return b.get(action.String())
}

// find returns the text of the first element with class cls.
func (pg *page) find(cls string) string {
	n := findNode(pg.root, func(n *html.Node) bool { return attr(n, "class") == cls })
	if n == nil {
		return ""
	}
	var sb strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			sb.WriteString(c.Data)
		}
	})
	return strings.TrimSpace(sb.String())
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func findNode(n *html.Node, match func(*html.Node) bool) *html.Node {
	var found *html.Node
	walk(n, func(c *html.Node) {
		if found == nil && c.Type == html.ElementNode && match(c) {
			found = c
		}
	})
	return found
}
