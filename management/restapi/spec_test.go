package restapi

import (
	"bufio"
	"bytes"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// specOperations returns "METHOD /path" for every operation under paths: in
// openapi.yaml (two-space path keys, four-space method keys).
func specOperations(t *testing.T) []string {
	t.Helper()
	var ops []string
	inPaths, path := false, ""
	methodRe := regexp.MustCompile(`^    (get|put|post|delete|patch|head|options):`)
	sc := bufio.NewScanner(bytes.NewReader(openapiSpec))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && line != "" && !strings.HasPrefix(line, " "):
			inPaths = false
		case inPaths && strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":"):
			path = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case inPaths && methodRe.MatchString(line):
			m := methodRe.FindStringSubmatch(line)[1]
			ops = append(ops, strings.ToUpper(m)+" "+path)
		}
	}
	if len(ops) == 0 {
		t.Fatal("no operations found in openapi.yaml")
	}
	return ops
}

func TestSpecMatchesRouter(t *testing.T) {
	spec := specOperations(t)
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

// TestSpecRefsResolve checks that every $ref points at a defined component.
func TestSpecRefsResolve(t *testing.T) {
	defined := map[string]bool{}
	section := ""
	inComponents := false
	sc := bufio.NewScanner(bytes.NewReader(openapiSpec))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "components:":
			inComponents = true
		case inComponents && strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") && strings.HasSuffix(line, ":"):
			section = strings.TrimSuffix(strings.TrimSpace(line), ":")
		case inComponents && strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     ") && strings.HasSuffix(line, ":"):
			defined["#/components/"+section+"/"+strings.TrimSuffix(strings.TrimSpace(line), ":")] = true
		}
	}
	refs := regexp.MustCompile(`\$ref: "([^"]+)"`).FindAllStringSubmatch(string(openapiSpec), -1)
	if len(refs) < 20 {
		t.Fatalf("only %d $refs found", len(refs))
	}
	for _, m := range refs {
		if !defined[m[1]] {
			t.Errorf("$ref %q is not defined", m[1])
		}
	}
	if strings.Contains(string(openapiSpec), "\t") {
		t.Error("openapi.yaml contains tabs")
	}
}
