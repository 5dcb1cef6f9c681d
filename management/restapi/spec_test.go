package restapi

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

var (
	specOnce sync.Once
	specDoc  *openapi3.T
	specErr  error
)

// loadSpec parses openapi.yaml with kin-openapi and validates it as an
// OpenAPI 3 document (structure, $refs, schemas, examples and defaults).
func loadSpec(t testing.TB) *openapi3.T {
	t.Helper()
	specOnce.Do(func() {
		specDoc, specErr = parseSpec(openapiSpec)
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return specDoc
}

func parseSpec(b []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(b)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		return nil, err
	}
	return doc, nil
}

// TestSpecIsValidOpenAPI: the served document loads and validates; a
// broken copy (each of the faults issue 16 reported) does not.
func TestSpecIsValidOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	for _, c := range []struct{ name, from, to string }{
		{"unquoted colon", "summary: Revoke a setup key; revocation is final", `summary: Revoke ({"revoked": true}); final`},
		{"stray key", "        public_key: {type: string, description: \"WireGuard public key (base64)\"}",
			"        public_key: {type: string, description: WireGuard public key, base64}"},
		{"dangling $ref", `$ref: "#/components/schemas/PolicyCheck"`, `$ref: "#/components/schemas/PolicyChecks"`},
	} {
		if !strings.Contains(string(openapiSpec), c.from) {
			t.Fatalf("%s: %q not in openapi.yaml", c.name, c.from)
		}
		bad := strings.Replace(string(openapiSpec), c.from, c.to, 1)
		if _, err := parseSpec([]byte(bad)); err == nil {
			t.Errorf("%s: a broken spec loads and validates", c.name)
		}
	}
}

// specOperations returns "METHOD /path" for every operation in the spec.
func specOperations(doc *openapi3.T) []string {
	var ops []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			ops = append(ops, method+" "+path)
		}
	}
	slices.Sort(ops)
	return ops
}

// TestSpecMatchesRouter: every route the router serves is in the spec with
// its method, and every operation in the spec is served.
func TestSpecMatchesRouter(t *testing.T) {
	spec := specOperations(loadSpec(t))
	var router []string
	for _, rt := range routes {
		router = append(router, rt.pattern())
	}
	for _, op := range router {
		if !slices.Contains(spec, op) {
			t.Errorf("route %q is served but missing from openapi.yaml", op)
		}
	}
	for _, op := range spec {
		if !slices.Contains(router, op) {
			t.Errorf("openapi.yaml documents %q but the router does not serve it", op)
		}
	}
	seen := map[string]bool{}
	for _, op := range router {
		if seen[op] {
			t.Errorf("route %q registered twice", op)
		}
		seen[op] = true
	}
}

// TestSpecDocumentsStatuses: every operation documents the statuses its
// kind of handler can return (the contract test checks those the suite
// actually provokes): 401, 403, 429 and 5XX behind the token (403: a role
// that may not call it, or a blocked user); 404 with an {id};
// 400, 409, 413 and 415 with a body; 409 on DELETE; 200/201/204 on success.
func TestSpecDocumentsStatuses(t *testing.T) {
	doc := loadSpec(t)
	public := map[string]bool{}
	for _, rt := range routes {
		public[rt.pattern()] = rt.public
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			want := []string{}
			switch {
			case public[method+" "+path]:
			default:
				want = append(want, "401", "403", "429", "5XX")
			}
			if strings.Contains(path, "{") {
				want = append(want, "404")
			}
			switch method {
			case http.MethodGet:
				want = append(want, "200")
			case http.MethodPost:
				want = append(want, "201", "400", "409", "413", "415")
			case http.MethodPut, http.MethodPatch:
				want = append(want, "200", "400", "409", "413", "415")
			case http.MethodDelete:
				want = append(want, "204", "409")
			}
			for _, code := range want {
				if op.Responses.Value(code) == nil {
					t.Errorf("%s %s: status %s not documented", method, path, code)
				}
			}
			if method == http.MethodPatch {
				if op.RequestBody == nil || op.RequestBody.Value.Content.Get(mediaMergePatch) == nil {
					t.Errorf("%s %s: no %s request body", method, path, mediaMergePatch)
				}
			}
		}
	}
}

// TestRoutesRegistered proves every table entry reaches its handler through
// the real ServeMux (not the 404/405 fallback).
func TestRoutesRegistered(t *testing.T) {
	e := newEnv(t)
	for _, rt := range routes {
		path := strings.ReplaceAll(rt.path, "{id}", "zz-none")
		st, body := e.do(rt.method, path, `{}`)
		if strings.Contains(string(body), "no such endpoint") || st == http.StatusMethodNotAllowed {
			t.Errorf("%s: reached the fallback: %d %s", rt.pattern(), st, body)
		}
	}
}
