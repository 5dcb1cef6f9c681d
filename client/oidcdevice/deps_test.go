package oidcdevice

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoOpenIDLibraryInDeps keeps the agent lean: this package is built
// on the standard library, so neither the OpenID library the tests use
// nor the telemetry it brings may become a dependency.
func TestNoOpenIDLibraryInDeps(t *testing.T) {
	goBin, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "petrel/client/oidcdevice").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %q", deps)
	}
	for _, d := range deps {
		if strings.Contains(d, "zitadel") || strings.Contains(d, "opentelemetry") {
			t.Errorf("petrel/client/oidcdevice depends on %s", d)
		}
	}
}
