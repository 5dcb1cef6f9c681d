package oidctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// sigKey is one signing key pair. It implements op.SigningKey (private
// side) and, through pubKey, op.Key (what the JWKS publishes).
type sigKey struct {
	id   string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k *sigKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *sigKey) Key() any                                    { return k.priv }
func (k *sigKey) ID() string                                  { return k.id }

type pubKey struct{ k *sigKey }

func (p pubKey) ID() string                         { return p.k.id }
func (p pubKey) Algorithm() jose.SignatureAlgorithm { return p.k.alg }
func (p pubKey) Use() string                        { return "sig" }
func (p pubKey) Key() any                           { return p.k.priv.Public() }

// newSigKey makes a key with a random ID.
func newSigKey(useRSA bool) (*sigKey, error) {
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	k := &sigKey{id: hex.EncodeToString(id)}
	var err error
	if useRSA {
		k.alg = jose.RS256
		k.priv, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		k.alg = jose.ES256
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return k, err
}

// keyring holds every key the provider ever made: the current one signs,
// the published ones are in the JWKS, the rest can still sign minted
// tokens so a test can show they are refused.
type keyring struct {
	useRSA bool

	mu        sync.Mutex
	all       map[string]*sigKey
	current   *sigKey
	published []*sigKey // current first
}

func newKeyring(useRSA bool) (*keyring, error) {
	k, err := newSigKey(useRSA)
	if err != nil {
		return nil, err
	}
	return &keyring{useRSA: useRSA, all: map[string]*sigKey{k.id: k}, current: k, published: []*sigKey{k}}, nil
}

func (r *keyring) rotate() (string, error) {
	k, err := newSigKey(r.useRSA)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all[k.id] = k
	r.current = k
	r.published = append([]*sigKey{k}, r.published...)
	return k.id, nil
}

func (r *keyring) retire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = []*sigKey{r.current}
}

func (r *keyring) signing() *sigKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

func (r *keyring) byID(id string) (*sigKey, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.all[id]
	return k, ok
}

func (r *keyring) currentID() string { return r.signing().id }

func (r *keyring) publishedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, len(r.published))
	for i, k := range r.published {
		ids[i] = k.id
	}
	return ids
}

func (r *keyring) keySet() []op.Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := make([]op.Key, len(r.published))
	for i, k := range r.published {
		keys[i] = pubKey{k}
	}
	return keys
}

func (r *keyring) algorithm() jose.SignatureAlgorithm { return r.signing().alg }
