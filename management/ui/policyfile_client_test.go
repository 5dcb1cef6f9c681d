package ui

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"petrel/internal/policyfile"
	"petrel/management"
	"petrel/management/model"
	"petrel/management/store/sqlite"
)

// The in-process REST client acts as the principal of its context, with
// the REST API's own permission checks: an admin may create a group, a
// user (role user) gets the API's 403, a context without a principal its
// 401, and neither changes anything.
func TestRESTInProcessAsPrincipal(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "petrel.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := management.New(management.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	token, _, err := svc.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := svc.AuthenticateToken(token)
	groups := func() int {
		a, err := svc.Snapshot(acct)
		if err != nil {
			t.Fatal(err)
		}
		return len(a.Groups)
	}
	var api policyfile.Client = newRESTInProcess(svc, slog.New(slog.DiscardHandler))
	before := groups()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		status int
	}{
		{"user", management.WithPrincipal(ctx, management.Principal{AccountID: acct, Role: model.RoleUser, UserID: "u1", Email: "u@example.com"}), http.StatusForbidden},
		{"no principal", ctx, http.StatusUnauthorized},
	} {
		_, err := api.Send(tc.ctx, "POST", "/api/groups", []byte(`{"name":"x"}`), policyfile.MediaJSON)
		var re *restError
		if !errors.As(err, &re) || re.status != tc.status {
			t.Fatalf("%s: %v, want status %d", tc.name, err, tc.status)
		}
		if err := api.Get(tc.ctx, "/api/groups", new([]any)); err == nil {
			t.Fatalf("%s: listed the groups", tc.name)
		}
	}
	if groups() != before {
		t.Fatal("a refused call changed the state")
	}
	admin := management.WithPrincipal(ctx, management.Principal{AccountID: acct, Role: model.RoleAdmin, UserID: "a1", Email: "a@example.com"})
	if _, err := api.Send(admin, "POST", "/api/groups", []byte(`{"name":"x"}`), policyfile.MediaJSON); err != nil {
		t.Fatal(err)
	}
	var list []struct{ Name string }
	if err := api.Get(admin, "/api/groups", &list); err != nil || len(list) != before+1 {
		t.Fatalf("groups: %v %v", list, err)
	}
	// A bad request gets the API's message, not a transport error.
	_, err = api.Send(admin, "POST", "/api/groups", []byte(`{"name":"y","colour":1}`), policyfile.MediaJSON)
	var re *restError
	if !errors.As(err, &re) || re.status != http.StatusBadRequest || re.msg == "" {
		t.Fatalf("bad request: %v", err)
	}
}
