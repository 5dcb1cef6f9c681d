// Package policyfile is the declarative policy file of `petrel-server
// apply` and of the dashboard's policy-file page: groups, policies, routes
// and DNS keyed by name (docs/server-cli.md, docs/examples/policy.yaml).
//
// It parses a file (Parse), reads the live state through the REST API
// (FetchLive, over the narrow Client interface), resolves the file's
// references by name, compares the two and makes a Plan: an ordered list of
// Changes (+ create, ~ update with field diffs, - delete). A Plan is data:
// the CLI prints it as text (WriteChanges), the dashboard renders it with
// html/template from Change's methods. Plan.Apply makes the changes in
// order through the same Client, stopping at the first failure
// (*ApplyError says what was and was not applied).
//
// Problems of the file, including references to groups or peers that do
// not exist, come back from Parse or MakePlan as Problems, before anything
// is changed.
//
// Imported by cmd/petrel-server and management/ui; the agent must not
// import it. Nothing here starts a goroutine or keeps state between calls:
// a Plan is used by one goroutine (Apply records the IDs of the groups it
// creates in it).
package policyfile
