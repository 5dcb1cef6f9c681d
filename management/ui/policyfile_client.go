package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"petrel/management"
	"petrel/management/restapi"
)

// restInProcess is policyfile.Client over the REST API served in-process:
// each call is an http.Request handed to restapi's handler, never to the
// network. The handler authenticates every request as the principal of its
// context (the signed-in user, rechecked by page), so the REST API's
// own checks apply unchanged: its role scopes, request decoding, name
// resolution and the service's rules, and the audit log names the user.
type restInProcess struct{ api http.Handler }

// newRESTInProcess builds the REST API over svc for one request.
func newRESTInProcess(svc management.AdminAPI, log *slog.Logger) restInProcess {
	return restInProcess{api: restapi.New(asSignedIn{svc}, log)}
}

// asSignedIn is the service as the in-process REST API sees it:
// Authenticate answers with the principal the request's context carries
// and refuses a request without one. The token is not looked at: no
// request reaches this handler from outside the dashboard.
type asSignedIn struct{ management.AdminAPI }

func (a asSignedIn) Authenticate(ctx context.Context, _ string) (management.Principal, error) {
	p, ok := management.PrincipalFrom(ctx)
	if !ok {
		return management.Principal{}, management.Errorf(management.KindUnauthenticated, "no token")
	}
	return p, nil
}

// restError is an answer of the REST API other than 2xx.
type restError struct {
	status int
	msg    string
}

func (e *restError) Error() string { return e.msg }

func (c restInProcess) Get(ctx context.Context, path string, out any) error {
	raw, err := c.Send(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode GET %s: %w", path, err)
	}
	return nil
}

func (c restInProcess) Send(ctx context.Context, method, path string, body []byte, contentType string) ([]byte, error) {
	r, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	r.Header.Set("Authorization", "Bearer dashboard-session")
	r.Header.Set("Accept", "application/json")
	if body != nil {
		r.Header.Set("Content-Type", contentType)
	}
	w := &memResponse{hdr: http.Header{}}
	c.api.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.status/100 != 2 {
		var eb struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(w.body.Bytes(), &eb) != nil || eb.Error == "" {
			eb.Error = fmt.Sprintf("%s %s answered %d", method, path, w.status)
		}
		return nil, &restError{status: w.status, msg: strings.TrimSpace(eb.Error)}
	}
	return w.body.Bytes(), nil
}

// memResponse is an http.ResponseWriter into memory.
type memResponse struct {
	hdr    http.Header
	status int
	body   bytes.Buffer
}

func (m *memResponse) Header() http.Header { return m.hdr }

func (m *memResponse) WriteHeader(status int) {
	if m.status == 0 {
		m.status = status
	}
}

func (m *memResponse) Write(b []byte) (int, error) {
	m.WriteHeader(http.StatusOK)
	return m.body.Write(b)
}
