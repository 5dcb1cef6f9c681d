package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// contract is test middleware that checks every request and response going
// through it against openapi.yaml with kin-openapi's openapi3filter:
//   - a response must be documented for its operation (status, headers,
//     media type, body schema); 204 has no body;
//   - a request the spec calls invalid must not succeed (so the spec is no
//     stricter than what the suite relies on);
//   - a path the spec lacks is 404, a method its path item lacks is 405
//     with Allow listing exactly the documented methods (401/429 before
//     that for a missing token), each with an Error body.
//
// newEnv puts it in front of the handler, so every request of the REST
// tests is checked; a mismatch fails the test that made the request.
type contract struct {
	t   testing.TB
	doc *openapi3.T
	h   http.Handler
}

func newContract(t testing.TB, h http.Handler) *contract {
	return &contract{t: t, doc: loadSpec(t), h: h}
}

func (c *contract) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		c.t.Errorf("contract: read request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	c.h.ServeHTTP(rec, r)
	if err := c.check(r, body, rec); err != nil {
		c.t.Errorf("contract: %s %s -> %d: %v\nresponse: %.300s", r.Method, r.URL, rec.Code, err, rec.Body.Bytes())
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (c *contract) check(r *http.Request, body []byte, rec *httptest.ResponseRecorder) error {
	tmpl, item, params := matchSpecPath(c.doc, r.URL.Path)
	var op *openapi3.Operation
	if item != nil {
		op = item.GetOperation(r.Method)
	}
	if op == nil {
		return c.checkUnrouted(item, rec)
	}
	ctx := context.Background()
	vreq := r.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params,
		Route: &routers.Route{Spec: c.doc, Path: tmpl, PathItem: item, Method: r.Method, Operation: op},
		Options: &openapi3filter.Options{
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc, // the server checks tokens
			SkipSettingDefaults: true,
		},
	}
	if reqErr := openapi3filter.ValidateRequest(ctx, in); reqErr != nil && rec.Code < 400 {
		return fmt.Errorf("the spec calls the request invalid (%v) but it succeeded", reqErr)
	}
	if rec.Code == http.StatusNoContent && rec.Body.Len() > 0 {
		return fmt.Errorf("204 with a body")
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	out.SetBodyBytes(rec.Body.Bytes())
	return openapi3filter.ValidateResponse(ctx, out)
}

// checkUnrouted checks the answer to a path or method the spec lacks.
func (c *contract) checkUnrouted(item *openapi3.PathItem, rec *httptest.ResponseRecorder) error {
	want := http.StatusNotFound
	if item != nil {
		want = http.StatusMethodNotAllowed
	}
	switch rec.Code {
	case want:
	case http.StatusUnauthorized, http.StatusTooManyRequests:
		return c.errorBody(rec)
	default:
		return fmt.Errorf("undocumented operation answered %d, want %d", rec.Code, want)
	}
	if want == http.StatusMethodNotAllowed {
		var documented []string
		for m := range item.Operations() {
			documented = append(documented, m)
		}
		slices.Sort(documented)
		allow := strings.Split(rec.Header().Get("Allow"), ", ")
		slices.Sort(allow)
		if !slices.Equal(allow, documented) {
			return fmt.Errorf("Allow %q, want the documented methods %q", rec.Header().Get("Allow"), documented)
		}
	}
	return c.errorBody(rec)
}

// errorBody checks rec's body against the Error schema.
func (c *contract) errorBody(rec *httptest.ResponseRecorder) error {
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		return fmt.Errorf("error response with Content-Type %q", ct)
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		return fmt.Errorf("error body is not JSON: %w", err)
	}
	return c.doc.Components.Schemas["Error"].Value.VisitJSON(v)
}

// matchSpecPath finds the spec path that urlPath matches, as OpenAPI
// says: a concrete path before a templated one (the candidate with the
// most fixed segments wins). It returns the template, its path item and
// the path parameters, or a nil item.
func matchSpecPath(doc *openapi3.T, urlPath string) (string, *openapi3.PathItem, map[string]string) {
	segs := strings.Split(urlPath, "/")
	best, bestFixed := "", -1
	var bestParams map[string]string
	for tmpl := range doc.Paths.Map() {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		params, fixed, ok := map[string]string{}, 0, true
		for i, t := range ts {
			if name, isParam := strings.CutPrefix(t, "{"); isParam {
				if segs[i] == "" {
					ok = false
					break
				}
				params[strings.TrimSuffix(name, "}")] = segs[i]
				continue
			}
			if t != segs[i] {
				ok = false
				break
			}
			fixed++
		}
		if ok && fixed > bestFixed {
			best, bestFixed, bestParams = tmpl, fixed, params
		}
	}
	if bestFixed < 0 {
		return "", nil, nil
	}
	return best, doc.Paths.Value(best), bestParams
}
