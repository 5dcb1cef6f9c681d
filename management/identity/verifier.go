package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Config names the provider and what the server accepts from it.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its tokens carry it.
	// It is discovered at Issuer/.well-known/openid-configuration.
	Issuer string
	// ClientID is the agent's client at the provider; Audiences lists
	// further client IDs whose ID tokens are accepted (the dashboard's,
	// say). A token is accepted when its "aud" names one of them.
	ClientID  string
	Audiences []string
	// GroupsClaim names the claim that lists the user's groups ("groups"
	// for most providers). Empty: groups are not read (Identity.Groups is
	// nil). Set: the claim must be present in every token.
	GroupsClaim string
	// AllowedEmailDomains, when not empty, admits only users whose email
	// is verified and whose domain (after the last '@', any case) is one
	// of these exactly; subdomains are not included.
	AllowedEmailDomains []string
	// HTTPClient fetches discovery and keys. Default: a client with a
	// 30 s timeout; a client without a timeout gets that one too (a
	// hung key fetch would stall every login behind it).
	HTTPClient *http.Client
	// ClockSkew is the leeway on exp, iat and nbf; default 1 minute.
	ClockSkew time.Duration
	// KeyCacheTTL bounds how long a key the provider removed keeps
	// verifying; default 10 minutes. A new key is fetched on first sight.
	KeyCacheTTL time.Duration
	// MaxNonces bounds the remembered nonces; default 65536.
	MaxNonces int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Identity is the verified user a token names.
type Identity struct {
	Issuer        string
	Subject       string // stable user ID at the issuer
	Email         string // "" if the token has none
	EmailVerified bool
	Name          string // for display; escaped and cut if need be
	// Groups is sorted and free of duplicates; nil when no GroupsClaim is
	// configured, never nil (maybe empty) when one is.
	Groups []string
	Expiry time.Time
}

// Verifier checks ID tokens of one provider. It is safe for concurrent
// use; Verify may block on fetching the provider's keys.
type Verifier struct {
	issuer      string
	audiences   []string
	groupsClaim string
	domains     []string
	skew        time.Duration
	now         func() time.Time
	algs        []jose.SignatureAlgorithm
	sig         *oidc.IDTokenVerifier
	nonces      *nonceSet
}

func (c *Config) setDefaults() error {
	if c.Issuer == "" || c.ClientID == "" {
		return errors.New("identity: issuer and client ID are required")
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	} else if c.HTTPClient.Timeout == 0 {
		hc := *c.HTTPClient
		hc.Timeout = 30 * time.Second
		c.HTTPClient = &hc
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = time.Minute
	}
	if c.KeyCacheTTL == 0 {
		c.KeyCacheTTL = 10 * time.Minute
	}
	if c.MaxNonces == 0 {
		c.MaxNonces = 1 << 16
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// New discovers the provider and returns a verifier for its ID tokens.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		JWKS string   `json:"jwks_uri"`
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discover %s: %w", cfg.Issuer, err)
	}
	ju, err := url.Parse(meta.JWKS)
	if err != nil || meta.JWKS == "" || ju.Host == "" {
		return nil, fmt.Errorf("discover %s: no usable jwks_uri", cfg.Issuer)
	}
	if strings.HasPrefix(cfg.Issuer, "https://") && ju.Scheme != "https" {
		return nil, fmt.Errorf("discover %s: jwks_uri %q is not https", cfg.Issuer, meta.JWKS)
	}
	keys := newKeySet(oidc.ClientContext(context.Background(), cfg.HTTPClient), meta.JWKS, cfg.KeyCacheTTL, cfg.Now)
	return newVerifier(cfg, keys, meta.Algs)
}

// signingAlgs are the algorithms go-oidc verifies; "none" and HMAC are
// never among them.
var signingAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

// newVerifier builds a verifier over a key set; announced are the
// provider's id_token_signing_alg_values_supported.
func newVerifier(cfg Config, keys oidc.KeySet, announced []string) (*Verifier, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var algs []string
	for _, a := range announced {
		if slices.Contains(signingAlgs, a) && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{oidc.RS256} // the discovery spec's default
	}
	v := &Verifier{
		issuer:      cfg.Issuer,
		audiences:   append([]string{cfg.ClientID}, cfg.Audiences...),
		groupsClaim: cfg.GroupsClaim,
		skew:        cfg.ClockSkew,
		now:         cfg.Now,
		nonces:      newNonceSet(cfg.MaxNonces),
	}
	for _, a := range algs {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	for _, d := range cfg.AllowedEmailDomains {
		d = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
		if d == "" || strings.ContainsAny(d, "@ \t") {
			return nil, fmt.Errorf("identity: allowed email domain %q is not a domain", d)
		}
		v.domains = append(v.domains, d)
	}
	// go-oidc checks the signature against the provider's keys; its
	// issuer, audience and expiry checks are done in Verify instead,
	// where each failure gets its own error.
	v.sig = oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{
		SupportedSigningAlgs: algs,
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SkipIssuerCheck:      true,
	})
	return v, nil
}

// VerifyOption changes one Verify call.
type VerifyOption func(*verifyOptions)

type verifyOptions struct{ nonce string }

// ExpectNonce requires the token's nonce to be n: the value the caller
// sent in its authentication request.
func ExpectNonce(n string) VerifyOption { return func(o *verifyOptions) { o.nonce = n } }
