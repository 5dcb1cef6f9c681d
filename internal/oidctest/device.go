package oidctest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// deviceEntry is one device authorization (RFC 8628 section 3.1).
type deviceEntry struct {
	userCode string
	state    op.DeviceAuthorizationState
}

// Errors of the approval steps, shown on the pages.
var (
	errUnknownCode = errors.New("unknown or used user code")
	errCodeExpired = errors.New("this code has expired; start again on the device")
	errCodeDecided = errors.New("this code was already approved or denied")
)

// StoreDeviceAuthorization records a new device authorization. Expired
// ones are swept first, so user codes are not kept forever.
func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if clientID != s.client.id {
		return fmt.Errorf("oidctest: unknown client %q", clientID)
	}
	now := time.Now()
	for dc, e := range s.devices {
		if now.After(e.state.Expires) {
			delete(s.devices, dc)
			delete(s.userCodes, e.userCode)
		}
	}
	if _, dup := s.userCodes[userCode]; dup {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &deviceEntry{userCode: userCode, state: op.DeviceAuthorizationState{
		ClientID: clientID, Scopes: slices.Clone(scopes), Expires: expires,
	}}
	s.userCodes[userCode] = deviceCode
	return nil
}

// GetDeviceAuthorizatonState answers a poll of the token endpoint. The OP
// turns an error into access_denied, except context.DeadlineExceeded,
// which it answers with slow_down. An approved authorization is handed
// out once: the device code is then forgotten.
func (s *storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[deviceCode]
	if !ok || e.state.ClientID != clientID {
		return nil, errors.New("oidctest: unknown device code")
	}
	if s.slowDowns > 0 {
		s.slowDowns--
		return nil, fmt.Errorf("oidctest: polling too fast: %w", context.DeadlineExceeded)
	}
	st := e.state // a copy: the OP appends to its Audience
	st.Scopes = slices.Clone(st.Scopes)
	st.Audience = slices.Clone(st.Audience)
	st.AMR = slices.Clone(st.AMR)
	if st.Done {
		delete(s.devices, deviceCode)
		delete(s.userCodes, e.userCode)
	}
	return &st, nil
}

// pending returns the undecided, unexpired authorization of a user code.
// Called with s.mu held.
func (s *storage) pending(userCode string) (*deviceEntry, error) {
	e, ok := s.devices[s.userCodes[userCode]]
	switch {
	case !ok:
		return nil, errUnknownCode
	case e.state.Done || e.state.Denied:
		return nil, errCodeDecided
	case time.Now().After(e.state.Expires):
		return nil, errCodeExpired
	}
	return e, nil
}

// decide approves (for subject) or denies a pending authorization.
func (s *storage) decide(userCode, subject string, allow bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.pending(userCode)
	if err != nil {
		return err
	}
	if !allow {
		e.state.Denied = true
		return nil
	}
	if _, ok := s.users[subject]; !ok {
		return fmt.Errorf("oidctest: no user %q", subject)
	}
	e.state.Done = true
	e.state.Subject = subject
	e.state.AuthTime = time.Now()
	e.state.AMR = []string{"pwd"}
	return nil
}

func (s *storage) expireDevice(userCode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.devices[s.userCodes[userCode]]
	if !ok {
		return fmt.Errorf("oidctest: %w %q", errUnknownCode, userCode)
	}
	e.state.Expires = time.Now().Add(-time.Second)
	return nil
}

func (s *storage) slowDown(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowDowns = n
}
