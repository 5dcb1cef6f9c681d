package identity

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// keySet is the provider's JWKS, through go-oidc's RemoteKeySet. That
// set fetches the JWKS again whenever a token's key is not in its cache
// (so a new key after a rotation is found at once), but keeps a key the
// provider has removed until the next such miss. keySet therefore starts
// a fresh RemoteKeySet once the current one is older than ttl: a removed
// key stops verifying within ttl.
type keySet struct {
	ctx context.Context // carries the HTTP client (oidc.ClientContext)
	url string
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	cur  *oidc.RemoteKeySet
	born time.Time
}

func newKeySet(ctx context.Context, jwksURL string, ttl time.Duration, now func() time.Time) *keySet {
	return &keySet{ctx: ctx, url: jwksURL, ttl: ttl, now: now}
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	k.mu.Lock()
	if now := k.now(); k.cur == nil || now.Sub(k.born) >= k.ttl || now.Before(k.born) {
		k.cur, k.born = oidc.NewRemoteKeySet(k.ctx, k.url), now
	}
	cur := k.cur
	k.mu.Unlock()
	payload, err := cur.VerifySignature(ctx, jwt)
	res, _ := ctx.Value(sigResultKey{}).(*sigResult)
	if err == nil {
		if res != nil {
			res.verified = true
		}
		return payload, nil
	}
	var ue *url.Error
	if errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: fetch keys: %w", ErrUnavailable, err)
		if res != nil {
			res.fetchErr = err
		}
	}
	return nil, err
}

// sigResult tells Verify what happened inside go-oidc's Verify, whose
// errors are strings: whether the signature was verified (a later error
// is then about the claims) or the keys could not be fetched.
type sigResult struct {
	verified bool
	fetchErr error
}

// sigResultKey is the context key of a *sigResult.
type sigResultKey struct{}
