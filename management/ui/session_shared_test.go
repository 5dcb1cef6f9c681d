package ui

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"petrel/management"
	"petrel/management/model"
	"petrel/management/store/postgres"
	"petrel/management/store/storetest"
)

// signOutBetween is a SharedState whose reads of a session are each
// followed, before the caller writes, by that session's removal: a
// sign-out on another instance landing between a request's read and its
// write.
type signOutBetween struct{ *postgres.Store }

func (s signOutBetween) GetUIState(ctx context.Context, kind string, key []byte) ([]byte, error) {
	data, err := s.Store.GetUIState(ctx, kind, key)
	if err == nil {
		_ = s.Store.DeleteUIState(ctx, kind, key)
	}
	return data, err
}

// TestSharedSignOutNotUndone: a request that read a session before it was
// signed out (recording its use, queueing or taking a message) does not
// bring it back.
func TestSharedSignOutNotUndone(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.OpenShared(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	clock := func() time.Time { return now }
	log := slog.New(slog.DiscardHandler)
	real, racy := newSessions(clock, st, log), newSessions(clock, signOutBetween{st}, log)
	p := management.Principal{AccountID: "a", Role: model.RoleOwner, Via: "admin-token", TokenID: "t"}
	for name, write := range map[string]func(id string){
		"use recorded":   func(id string) { racy.get(id) },
		"message queued": func(id string) { racy.addFlash(id, flash{Msg: "hi"}) },
		"message taken":  func(id string) { racy.takeFlash(id) },
	} {
		t.Run(name, func(t *testing.T) {
			id, err := real.create(p, "token")
			if err != nil {
				t.Fatal(err)
			}
			if name == "message taken" {
				real.addFlash(id, flash{Msg: "queued"})
			}
			now = now.Add(2 * touchEvery) // a use worth recording
			write(id)
			if _, ok := real.get(id); ok {
				t.Fatal("the signed-out session works again")
			}
		})
	}
}
