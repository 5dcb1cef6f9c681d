package restapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"petrel/internal/keys"
	"petrel/management"
	"petrel/proto/managementpb"
)

// TestOversizedPolicyRefusedWhileAgentsSync: a 20,000-rule policy (issue 12)
// is refused with 400 invalid_argument and stores nothing, and an agent's
// Sync stream opened before it keeps receiving updates afterwards.
func TestOversizedPolicyRefusedWhileAgentsSync(t *testing.T) {
	e := newEnv(t)
	key := e.setupKey()
	priv, err := keys.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Login(context.Background(), priv.Public(), &managementpb.LoginRequest{SetupKey: key, Hostname: "agent"}); err != nil {
		t.Fatal(err)
	}
	e.addPeer(key, "other")

	ctx, cancel := context.WithCancel(context.Background())
	msgs := make(chan *managementpb.SyncResponse, 64)
	done := make(chan error, 1)
	go func() {
		done <- e.svc.Sync(ctx, priv.Public(), &managementpb.SyncRequest{}, func(r *managementpb.SyncResponse) error {
			msgs <- r
			return nil
		})
	}()
	defer func() { cancel(); <-done }()
	next := func(what string) *managementpb.SyncResponse {
		t.Helper()
		select {
		case r := <-msgs:
			return r
		case err := <-done:
			done <- err
			t.Fatalf("%s: sync ended: %v", what, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no sync message within 30 s", what)
		}
		return nil
	}
	first := next("first map")
	if first.GetFull() == nil {
		t.Fatalf("first message has no full map: %v", first)
	}

	const n = 20000
	rule := `{"sources":["All"],"destinations":["All"]}`
	body := `{"name":"huge","rules":[` + strings.Repeat(rule+",", n-1) + rule + `]}`
	e.fails("POST", "/api/policies", body, 400, "invalid_argument", "a policy may have at most 1000")

	// The agent keeps syncing: a valid policy reaches it as the next delta.
	e.must("POST", "/api/policies", map[string]any{"name": "mesh", "rules": []any{map[string]any{
		"sources": []string{"All"}, "destinations": []string{"All"}, "bidirectional": true}}}, 201, nil)
	r := next("update after the refused policy")
	if r.GetDelta() == nil || r.GetSerial() != first.GetSerial()+1 {
		t.Fatalf("update: serial %d after %d, delta %v", r.GetSerial(), first.GetSerial(), r.GetDelta())
	}
	select {
	case err := <-done:
		done <- err
		t.Fatalf("sync ended: %v", err)
	default:
	}
	if got := len(e.snapshot().Policies); got != 1 {
		t.Fatalf("policies stored: %d, want 1", got)
	}
	_ = management.MaxRulesPerPolicy
}
