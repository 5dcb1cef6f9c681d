package restapi

import (
	"reflect"
	"testing"
	"time"
)

// TestSettingsRoundTrip: /api/settings reads and changes the DNS domain
// and the login expiration; the GET body is a valid PUT; /api/dns/settings
// changes only the domain and keeps the login expiration; the account view
// shows both; bad values are 400s that change nothing.
func TestSettingsRoundTrip(t *testing.T) {
	e := newEnv(t)
	var set settingsView
	e.must("GET", "/api/settings", nil, 200, &set)
	if set != (settingsView{DNSDomain: "petrel.internal"}) {
		t.Fatalf("defaults: %+v", set)
	}
	before := e.getMap("/api/settings")
	e.must("PUT", "/api/settings", before, 200, nil)
	if after := e.getMap("/api/settings"); !reflect.DeepEqual(before, after) {
		t.Fatalf("PUT of the GET body changed the settings: %v", after)
	}

	e.patch("/api/settings", map[string]any{"login_expiration_seconds": 86400}, 200, &set)
	if set.LoginExpirationSeconds != 86400 || e.snapshot().Settings.LoginExpiration != 24*time.Hour {
		t.Fatalf("patch: %+v", set)
	}
	e.must("PUT", "/api/dns/settings", map[string]any{"dns_domain": "corp.internal."}, 200, nil)
	if s := e.snapshot().Settings; s.DNSDomain != "corp.internal" || s.LoginExpiration != 24*time.Hour {
		t.Fatalf("PUT /api/dns/settings: %+v", s)
	}
	if dns := e.getMap("/api/dns/settings"); len(dns) != 1 || dns["dns_domain"] != "corp.internal" {
		t.Fatalf("dns settings view: %v", dns)
	}
	var acct accountView
	e.must("GET", "/api/accounts/"+e.acct, nil, 200, &acct)
	if acct.Settings != (settingsView{DNSDomain: "corp.internal", LoginExpirationSeconds: 86400}) {
		t.Fatalf("account settings: %+v", acct.Settings)
	}
	e.must("PUT", "/api/settings", map[string]any{"login_expiration_seconds": 0}, 200, &set)
	if set.LoginExpirationSeconds != 0 || set.DNSDomain != "corp.internal" {
		t.Fatalf("never: %+v", set)
	}

	for _, c := range []struct {
		body any
		msg  string
	}{
		{map[string]any{"login_expiration_seconds": 30}, "between 1 minute and 10 years"},
		{map[string]any{"login_expiration_seconds": -1}, "login_expiration_seconds -1"},
		{map[string]any{"login_expiration_seconds": 1 << 50}, "ten years"},
		{map[string]any{"login_expiration_seconds": "1h"}, `field "login_expiration_seconds"`},
		{map[string]any{"dns_domain": ""}, "dns_domain must not be empty"},
		{map[string]any{}, "nothing to update"},
		{map[string]any{"login_expiration": 5}, `unknown field "login_expiration"`},
	} {
		e.fails("PUT", "/api/settings", c.body, 400, codeInvalid, c.msg)
	}
	e.fails("PUT", "/api/dns/settings", map[string]any{"dns_domain": "x.internal", "login_expiration_seconds": 60}, 400, codeInvalid, "unknown field")
}
