package oidcdevice

import (
	"context"
	"errors"
	"fmt"
	"net/url"
)

// tokenAnswer is a successful token response (RFC 6749 section 5.1).
type tokenAnswer struct {
	IDToken     string  `json:"id_token"`
	AccessToken string  `json:"access_token"`
	ExpiresIn   seconds `json:"expires_in"`
}

// Wait polls the token endpoint (RFC 8628 section 3.4) every Interval:
// "authorization_pending" polls again, "slow_down" adds 5 s to the
// interval for good, "access_denied" is ErrDenied, "expired_token" (or
// the code's lifetime passing on the agent's clock) is ErrExpired, any
// other OAuth error ends the wait with it. A poll that gets no answer
// (network trouble, a request timeout) or a 5xx or 429 status doubles the
// interval, up to a minute; five in a row end the wait with the last
// error. Any other answer that is not a token or an OAuth error (a
// non-JSON body, one over 1 MiB, another status) ends the wait at once.
func (a *Authorization) Wait(ctx context.Context) (*Tokens, error) {
	form := url.Values{
		"grant_type":  {grantDeviceCode},
		"device_code": {a.deviceCode},
		"client_id":   {a.cfg.ClientID},
	}
	interval, failures := a.Interval, 0
	for {
		if err := a.cfg.Sleep(ctx, interval); err != nil {
			return nil, err
		}
		if !a.Expires.IsZero() && a.cfg.Now().After(a.Expires) {
			return nil, ErrExpired
		}
		tok, err := a.poll(ctx, form)
		if err == nil {
			return tok, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var oe *oauthError
		switch {
		case errors.Is(err, ErrNoIDToken):
			return nil, err
		case errors.As(err, &oe):
			failures = 0
		case transient(err):
			if failures++; failures >= maxFailures {
				return nil, a.pollError(err)
			}
			interval = min(2*interval, max(maxBackoff, interval))
			continue
		default:
			return nil, a.pollError(err)
		}
		switch oe.Code {
		case "authorization_pending":
		case "slow_down":
			interval += slowDownStep
		case "access_denied":
			return nil, describe(ErrDenied, oe)
		case "expired_token":
			return nil, describe(ErrExpired, oe)
		default:
			return nil, a.pollError(oe)
		}
	}
}

// poll asks the token endpoint once.
func (a *Authorization) poll(ctx context.Context, form url.Values) (*Tokens, error) {
	status, body, err := a.wire.send(ctx, a.tokenEndpoint, form)
	if err != nil {
		if status != 0 { // an answer came, but too large
			return nil, err
		}
		return nil, &transportError{err}
	}
	var ans tokenAnswer
	if err := decode(status, body, &ans); err != nil {
		return nil, err
	}
	if ans.IDToken == "" {
		return nil, ErrNoIDToken
	}
	t := &Tokens{IDToken: ans.IDToken, AccessToken: ans.AccessToken}
	if ans.ExpiresIn > 0 {
		t.Expiry = a.cfg.Now().Add(ans.ExpiresIn.duration())
	}
	return t, nil
}

func (a *Authorization) pollError(err error) error {
	return fmt.Errorf("poll token endpoint %s: %w", clean(a.tokenEndpoint), err)
}

// transportError is a poll that got no HTTP answer.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// transient reports whether a failed poll is worth retrying later.
func transient(err error) bool {
	var te *transportError
	var se *serverError
	return errors.As(err, &te) || errors.As(err, &se)
}
