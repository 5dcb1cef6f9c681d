package ui

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"petrel/management/store"
)

// Sign-ins in progress in the shared state (several servers, --ha): the
// provider may send the browser back to any instance.

// storedAttempt is an attempt as the shared state holds it. The verifier
// and nonce are secrets of a sign-in that lives at most attemptTTL and is
// taken (deleted) by the callback; the database holds them for that long.
type storedAttempt struct {
	State    string     `json:"state"`
	Nonce    string     `json:"nonce"`
	Verifier string     `json:"verifier"`
	Next     string     `json:"next"`
	Src      netip.Addr `json:"src"`
	Created  time.Time  `json:"created"`
}

// putShared stores a under binding's hash and drops the browser's earlier
// attempt (old); amu is held.
func (o *oidcLogin) putShared(binding, old string, a *attempt) error {
	ctx, cancel := ctxShared()
	defer cancel()
	if err := o.shared.SweepUIState(ctx, a.created); err != nil { // abandoned sign-ins
		o.log.Warn("sweep expired sign-ins", "err", err)
	}
	if old != "" {
		k := sha256.Sum256([]byte(old))
		if err := o.shared.DeleteUIState(ctx, kindSignIn, k[:]); err != nil {
			o.log.Warn("drop a superseded sign-in", "err", err)
		}
	}
	data, err := json.Marshal(storedAttempt{State: a.state, Nonce: a.nonce, Verifier: a.verifier, Next: a.next,
		Src: a.src, Created: a.created})
	if err != nil {
		return err
	}
	k := sha256.Sum256([]byte(binding))
	if err := o.shared.PutUIState(ctx, kindSignIn, k[:], data, a.created.Add(attemptTTL)); err != nil {
		o.log.Warn("store a sign-in in progress", "err", err)
		return fmt.Errorf("the sign-in cannot be started now (the database did not answer); try again")
	}
	return nil
}

// takeShared removes and returns the attempt stored under key, or nil.
func (o *oidcLogin) takeShared(key []byte) *attempt {
	ctx, cancel := ctxShared()
	defer cancel()
	data, err := o.shared.TakeUIState(ctx, kindSignIn, key)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			o.log.Warn("read a sign-in in progress", "err", err)
		}
		return nil
	}
	var v storedAttempt
	if err := json.Unmarshal(data, &v); err != nil {
		o.log.Warn("unreadable sign-in in progress", "err", err)
		return nil
	}
	return &attempt{state: v.State, nonce: v.Nonce, verifier: v.Verifier, next: v.Next, src: v.Src, created: v.Created}
}
