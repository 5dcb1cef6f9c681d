// Package restapi is the admin REST API of the management service, served
// under /api with `Authorization: Bearer TOKEN`.
//
// It is a thin adapter: it authenticates the caller (an admin token, a
// personal access token or an OpenID access token, through
// AdminAPI.Authenticate, which returns a management.Principal), checks
// the route's scope against the caller's role (routes.go: users reach only
// the scopeSelf routes, and there only their own peers, user and access
// tokens), puts the principal into the request context so the service
// audits mutations with the right actor, decodes and checks JSON
// requests (media type, unknown fields, null, size limit, syntax, durations,
// enums), resolves peer and group references given by ID or by name against
// a Snapshot of the caller's account, and calls management.AdminAPI, which
// owns every business rule. Responses are JSON in snake_case; errors are
// {"error": "...", "code": "invalid_argument"} with a matching HTTP status.
// A request that fails anywhere before the AdminAPI call changes nothing.
//
// Every route is declared once in the routes table (routes.go); the same
// table feeds the http.ServeMux and the tests that keep openapi.yaml
// (embedded and served at GET /api/openapi.yaml) in step with the router.
// Collections with the usual list/get/create/update/delete shapes are
// described by a resource value (crud.go) whose generic methods are the
// handlers; the endpoints that differ are written out beside it. A PUT body
// may repeat the read-only members of the GET representation (readonly.go);
// PATCH applies a JSON merge patch to that representation and handles the
// result as a PUT body (patch.go). The tests run every request through a
// middleware that validates it and its response against openapi.yaml.
//
// Imported by cmd/petrel-server (and tests). The http.Handler returned by New
// is safe for concurrent use; it holds no state of its own beyond the
// AdminAPI it was given.
package restapi
