package route

import (
	"errors"
	"fmt"

	"petrel/internal/feature"
)

// unsupported returns what of cfg needs host changes, as one
// *feature.UnsupportedError per feature (joined; nil for none): the
// answer of a platform without policy routing, forwarding or nftables
// (route_default.go). A netstack-mode cfg (no Interface) needs nothing.
func unsupported(cfg Config) error {
	if cfg.Interface == "" {
		return nil
	}
	var errs []error
	n := 0
	for _, p := range cfg.Routes {
		if p.Bits() > 0 { // the exit node's defaults are the exit-node feature
			n++
		}
	}
	if n > 0 {
		errs = append(errs, feature.Unsupported(feature.Routes, plural(n, "route")+" to install", "policy routing"))
	}
	if cfg.Exit.Active {
		errs = append(errs, feature.Unsupported(feature.ExitNode, "an exit node is selected", "policy routing"))
	}
	if len(cfg.Serve) > 0 {
		errs = append(errs, feature.Unsupported(feature.RoutingPeer,
			"this agent serves "+plural(len(cfg.Serve), "network"), "forwarding and masquerade"))
	}
	return errors.Join(errs...)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
