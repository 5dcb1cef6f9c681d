package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"petrel/internal/printable"
)

// fuzzVerifier is a verifier over one static ES256 key, so a fuzz input
// can be any payload signed by a trusted key: everything after the
// signature (go-oidc's claim parsing, the checks and parseClaims) is
// reached.
func fuzzVerifier(f *testing.F) (*Verifier, jose.Signer, time.Time) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	v, err := newVerifier(Config{Issuer: "https://idp.example", ClientID: "agent", GroupsClaim: "groups",
		AllowedEmailDomains: []string{"example.com"}, Now: func() time.Time { return now }},
		&oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{key.Public()}}, []string{"ES256"})
	if err != nil {
		f.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, nil)
	if err != nil {
		f.Fatal(err)
	}
	return v, signer, now
}

var knownErrors = []error{ErrMalformed, ErrSignature, ErrIssuer, ErrAudience, ErrExpired, ErrNotYetValid,
	ErrNonce, ErrNonceReplayed, ErrClaims, ErrDomain, ErrUnavailable}

func checkOutcome(t *testing.T, id *Identity, err error) {
	t.Helper()
	if err != nil {
		if id != nil {
			t.Fatal("identity with an error")
		}
		if !slices.ContainsFunc(knownErrors, func(e error) bool { return errors.Is(err, e) }) {
			t.Fatalf("untyped error %v", err)
		}
		return
	}
	if id.Subject == "" || len(id.Subject) > maxSubject || id.Issuer != "https://idp.example" || id.Groups == nil ||
		!id.EmailVerified || emailDomain(id.Email) != "example.com" || !printable.Safe(id.Name) {
		t.Fatalf("accepted identity breaks an invariant: %+v", *id)
	}
	for i, g := range id.Groups {
		if g == "" || !printable.Safe(g) || (i > 0 && id.Groups[i-1] >= g) {
			t.Fatalf("groups %q", id.Groups)
		}
	}
}

// validPayloads verify with fuzzVerifier's key; they seed FuzzVerify so
// the fuzzer starts from inputs that reach every check.
var validPayloads = []string{
	`{"iss":"https://idp.example","sub":"u1","aud":"agent","exp":1800003600,"iat":1800000000,` +
		`"email":"a@example.com","email_verified":true,"name":"A","groups":["eng","ops"]}`,
	`{"iss":"https://idp.example","sub":"u1","aud":["x","agent"],"azp":"agent","exp":1800003600,"iat":1800000000,` +
		`"nbf":1799999999,"nonce":"n","email":"A@EXAMPLE.COM","email_verified":"true","groups":"eng"}`,
}

func signPayload(t testing.TB, signer jose.Signer, payload []byte) string {
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// FuzzVerify signs each payload with the trusted key and verifies it.
func FuzzVerify(f *testing.F) {
	v, signer, _ := fuzzVerifier(f)
	for _, p := range validPayloads {
		if _, err := v.Verify(context.Background(), signPayload(f, signer, []byte(p))); err != nil {
			f.Fatalf("seed %s: %v", p, err)
		}
		f.Add([]byte(p))
	}
	v.nonces = newNonceSet(1 << 16) // forget the seeds' nonces
	f.Add([]byte(`{"iss":"https://idp.example","sub":"u1","aud":"agent","exp":"soon","groups":[1]}`))
	f.Add([]byte(`{"_claim_names":{"groups":"src"},"_claim_sources":{}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		id, err := v.Verify(context.Background(), signPayload(t, signer, payload))
		checkOutcome(t, id, err)
	})
}

// FuzzVerifyRaw feeds arbitrary strings as tokens: only refusals.
func FuzzVerifyRaw(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	f.Add("a.b.c")
	f.Add(`{"payload":"e30","signatures":[{"protected":"eyJhbGciOiJFUzI1NiJ9","signature":""}]}`)
	v, _, _ := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(context.Background(), raw)
		if err == nil {
			t.Fatalf("accepted an unsigned input: %+v", *id)
		}
		checkOutcome(t, id, err)
	})
}

// FuzzParseClaims runs the claims parser alone, faster than FuzzVerify.
func FuzzParseClaims(f *testing.F) {
	f.Add([]byte(`{"groups":["eng"," ops","eng"],"email":"a@b.c","email_verified":"TRUE","name":"\u001b","nbf":1.5}`))
	f.Add([]byte(`{"groups":{"a":1},"azp":7}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := parseClaims(payload, "groups")
		if err != nil {
			if !errors.Is(err, ErrClaims) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if c.groups == nil || !slices.IsSorted(c.groups) || len(c.groups) > MaxGroups || !printable.Safe(c.name) || len(c.name) > maxName {
			t.Fatalf("claims %+v", c)
		}
	})
}
