package engine

import (
	"testing"

	"petrel/internal/keys"
)

// TestSetHostnameReachesLogins: after SetHostname (petrel set --hostname),
// every later login and Sync request carries the new name, so a reconnect
// does not put the old one back on the server.
func TestSetHostnameReachesLogins(t *testing.T) {
	k, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Key: k, Hostname: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.loginRequest(); r.GetHostname() != "old" || r.GetMeta().GetHostname() != "old" {
		t.Fatalf("before: %v", r)
	}
	e.SetHostname("renamed")
	if r := e.loginRequest(); r.GetHostname() != "renamed" || r.GetMeta().GetHostname() != "renamed" {
		t.Fatalf("after SetHostname: %v", r)
	}
}
