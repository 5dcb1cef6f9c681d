package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	ossignal "os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"petrel/client/daemon"
	"petrel/client/mgmt"
	"petrel/client/oidcdevice"
	"petrel/internal/cmdline"
	"petrel/internal/tlstrust"
	"petrel/proto/daemonpb"
	"petrel/proto/managementpb"
)

// signInToken runs the device flow when `up` or `login` needs a person to
// sign in, and returns the ID token for the daemon ("" when no sign-in is
// needed or the server has no identity provider — the daemon then asks
// for a setup key). A sign-in is needed, without a setup key, when the
// machine is not registered with target, when management refused its login
// (needs-login: expired, blocked, deleted), or when force is set.
func signInToken(cmd *cobra.Command, g *globalFlags, f *daemonFlags, target string, force bool) (string, error) {
	prof, err := daemon.StateDir{Path: g.stateDir}.LoadProfile()
	if err != nil && !os.IsPermission(err) {
		return "", err
	}
	if target == "" {
		target = prof.ManagementURL
	}
	if target == "" {
		return "", nil // the daemon says a URL is needed
	}
	if !force && prof.Registered && prof.ManagementURL == target && !daemonNeedsLogin(g) {
		return "", nil
	}
	ctx, stop := ossignal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	si, err := fetchSignIn(ctx, target, f.caFile)
	if err != nil || si == nil {
		return "", err
	}
	hc, err := idpClient(f.caFile)
	if err != nil {
		return "", err
	}
	out := cmd.ErrOrStderr()
	fmt.Fprintf(out, "Signing in through %s\n", si.GetIssuer())
	return deviceLogin(ctx, out, cmdline.ColorEnabled(out, os.Getenv), oidcdevice.Config{
		Issuer: si.GetIssuer(), ClientID: si.GetClientId(), Scopes: si.GetScopes(), HTTPClient: hc})
}

// fetchSignIn asks management about its identity provider.
func fetchSignIn(ctx context.Context, target, caFile string) (*managementpb.SignIn, error) {
	var opts []grpc.DialOption
	if caFile != "" {
		roots, err := tlstrust.LoadRoots(caFile)
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("--ca-file: %w", err)}
		}
		u, err := daemon.ValidateManagementURL(target)
		if err != nil {
			return nil, &exitError{2, err}
		}
		if pu, err := url.Parse(u); err == nil && pu.Scheme == "https" {
			opts = append(opts, grpc.WithTransportCredentials(tlstrust.NewCreds(tlstrust.ClientConfig(roots, pu.Hostname()))))
		}
	}
	c, err := mgmt.Dial(ctx, target, opts...)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	si, err := c.SignIn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", target, rpcErr(err))
	}
	return si, nil
}

// idpClient is the HTTP client for the identity provider: the system roots
// plus --ca-file's certificates (a private provider may share the
// management server's CA).
func idpClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return &http.Client{Timeout: 30 * time.Second}, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, &exitError{2, fmt.Errorf("--ca-file: %w", err)}
	}
	pool.AppendCertsFromPEM(b)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlstrust.ClientConfig(pool, "")
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// daemonNeedsLogin reports whether a running daemon says management
// refused this machine's login.
func daemonNeedsLogin(g *globalFlags) bool {
	needs := false
	_ = callDaemon(g, 3*time.Second, func(ctx context.Context, cl daemonpb.DaemonClient) error {
		st, err := cl.Status(ctx, &daemonpb.StatusRequest{})
		needs = err == nil && st.GetState() == "needs-login"
		return err
	})
	return needs
}
