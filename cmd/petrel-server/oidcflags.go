package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"petrel/internal/tlstrust"
	"petrel/server"
)

// oidcFlags are the OpenID provider settings of `run` (docs/identity.md).
type oidcFlags struct {
	issuer, clientID, secretFile, groupsClaim, account string
	caFile, webClientID, name                          string
	scopes, emailDomains, ownerEmails                  []string
}

func (o *oidcFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&o.issuer, "oidc-issuer", "", "OpenID provider issuer URL: people sign agents in with it and use its access tokens on the REST API (off when empty)")
	fl.StringVar(&o.clientID, "oidc-client-id", "", "client ID of the agents' public client at the provider (device authorization grant enabled)")
	fl.StringVar(&o.secretFile, "oidc-client-secret-file", "", "file holding the client secret of a confidential web client (the dashboard's; optional)")
	fl.StringVar(&o.webClientID, "oidc-web-client-id", "", "client ID of the dashboard at the provider (authorization-code flow with PKCE, redirect URI <public-url>/ui/login/callback; default --oidc-client-id)")
	fl.StringVar(&o.name, "oidc-name", "", "provider name on the dashboard's \"Sign in with\" button (default the issuer's host)")
	fl.StringSliceVar(&o.scopes, "oidc-scopes", nil, "scopes agents ask for (comma-separated; default openid,profile,email — add the provider's groups scope for group sync)")
	fl.StringVar(&o.groupsClaim, "oidc-groups-claim", "", "token claim listing the user's groups, synced to Petrel groups (empty: no group sync)")
	fl.StringSliceVar(&o.emailDomains, "oidc-email-domains", nil, "only users with a verified email in these domains sign in (comma-separated; default any)")
	fl.StringSliceVar(&o.ownerEmails, "oidc-owner-emails", nil, "verified emails whose users are created with the owner role (comma-separated)")
	fl.StringVar(&o.account, "oidc-account", "", "account signed-in users join (default the first account)")
	fl.StringVar(&o.caFile, "oidc-ca-file", "", "PEM file of the CA that signed the provider's certificate (default the system roots)")
}

// config returns the server's OIDC settings; reading the secret file is
// the only thing that can fail here (the rest is validated by the server).
func (o *oidcFlags) config() (server.OIDC, error) {
	c := server.OIDC{Issuer: strings.TrimSpace(o.issuer), ClientID: strings.TrimSpace(o.clientID), Scopes: o.scopes,
		GroupsClaim: strings.TrimSpace(o.groupsClaim), EmailDomains: o.emailDomains, OwnerEmails: o.ownerEmails,
		Account: strings.TrimSpace(o.account), WebClientID: strings.TrimSpace(o.webClientID), Name: strings.TrimSpace(o.name)}
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return c, fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
		if c.ClientSecret = strings.TrimSpace(string(b)); c.ClientSecret == "" {
			return c, fmt.Errorf("--oidc-client-secret-file %s: empty", o.secretFile)
		}
	}
	if o.caFile != "" {
		roots, err := tlstrust.LoadRoots(o.caFile)
		if err != nil {
			return c, fmt.Errorf("--oidc-ca-file: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlstrust.ClientConfig(roots, "")
		c.HTTPClient = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	return c, nil
}
