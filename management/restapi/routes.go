package restapi

// route is one REST endpoint. The table below is the single list of what
// the API serves: New registers it on the ServeMux and the spec test checks
// it against openapi.yaml in both directions.
type route struct {
	method string // GET, POST, PUT, PATCH, DELETE
	path   string // ServeMux path with {wildcards}
	handle handleFunc
	public bool // served without a token
	// scope is who may call the route (after authentication).
	scope scope
}

func (r route) pattern() string { return r.method + " " + r.path }

// scope says which roles may call a route. The table is the one place
// that says what a user (role user) may do: only the scopeSelf routes,
// whose handlers keep them to their own peers, their own user and their
// own access tokens. Everything else answers them 403.
type scope int

const (
	// scopeAdmin: owners and admins only (the default).
	scopeAdmin scope = iota
	// scopeSelf: every role; a user sees and changes only their own
	// objects (another user's is a 403).
	scopeSelf
)

var routes = []route{
	{method: "GET", path: "/api/openapi.yaml", handle: (*server).getSpec, public: true},

	{method: "GET", path: "/api/accounts", handle: (*server).listAccounts},
	{method: "GET", path: "/api/accounts/{id}", handle: (*server).getAccount},

	{method: "GET", path: "/api/peers", handle: peerResource.list, scope: scopeSelf},
	{method: "GET", path: "/api/peers/{id}", handle: peerResource.get, scope: scopeSelf},
	{method: "PUT", path: "/api/peers/{id}", handle: peerUpdater.put, scope: scopeSelf},
	{method: "PATCH", path: "/api/peers/{id}", handle: peerUpdater.patch, scope: scopeSelf},
	{method: "DELETE", path: "/api/peers/{id}", handle: peerResource.delete, scope: scopeSelf},

	{method: "GET", path: "/api/users", handle: (*server).listUsers},
	{method: "GET", path: "/api/users/{id}", handle: (*server).getUser, scope: scopeSelf},
	{method: "PUT", path: "/api/users/{id}", handle: userUpdater.put},
	{method: "PATCH", path: "/api/users/{id}", handle: userUpdater.patch},
	{method: "DELETE", path: "/api/users/{id}", handle: (*server).deleteUser},
	{method: "GET", path: "/api/users/{id}/tokens", handle: (*server).listTokens, scope: scopeSelf},
	{method: "POST", path: "/api/users/{id}/tokens", handle: (*server).createToken, scope: scopeSelf},
	{method: "DELETE", path: "/api/users/{id}/tokens/{tokenId}", handle: (*server).revokeToken, scope: scopeSelf},

	{method: "GET", path: "/api/events", handle: (*server).listEvents},

	{method: "GET", path: "/api/settings", handle: (*server).getSettings},
	{method: "PUT", path: "/api/settings", handle: settingsUpdater.put},
	{method: "PATCH", path: "/api/settings", handle: settingsUpdater.patch},

	{method: "GET", path: "/api/groups", handle: groupResource.list},
	{method: "POST", path: "/api/groups", handle: groupResource.create},
	{method: "GET", path: "/api/groups/{id}", handle: groupResource.get},
	{method: "PUT", path: "/api/groups/{id}", handle: groupResource.updater().put},
	{method: "PATCH", path: "/api/groups/{id}", handle: groupResource.updater().patch},
	{method: "DELETE", path: "/api/groups/{id}", handle: groupResource.delete},

	{method: "GET", path: "/api/setup-keys", handle: setupKeyResource.list},
	{method: "POST", path: "/api/setup-keys", handle: (*server).createSetupKey},
	{method: "GET", path: "/api/setup-keys/{id}", handle: setupKeyResource.get},
	{method: "PUT", path: "/api/setup-keys/{id}", handle: setupKeyUpdater.put},
	{method: "PATCH", path: "/api/setup-keys/{id}", handle: setupKeyUpdater.patch},
	{method: "DELETE", path: "/api/setup-keys/{id}", handle: setupKeyResource.delete},

	{method: "GET", path: "/api/policies", handle: policyResource.list},
	{method: "POST", path: "/api/policies", handle: policyResource.create},
	{method: "GET", path: "/api/policies/check", handle: (*server).checkPolicy},
	{method: "GET", path: "/api/policies/{id}", handle: policyResource.get},
	{method: "PUT", path: "/api/policies/{id}", handle: policyResource.updater().put},
	{method: "PATCH", path: "/api/policies/{id}", handle: policyResource.updater().patch},
	{method: "DELETE", path: "/api/policies/{id}", handle: policyResource.delete},

	{method: "GET", path: "/api/routes", handle: routeResource.list},
	{method: "POST", path: "/api/routes", handle: routeResource.create},
	{method: "GET", path: "/api/routes/{id}", handle: routeResource.get},
	{method: "PUT", path: "/api/routes/{id}", handle: routeResource.updater().put},
	{method: "PATCH", path: "/api/routes/{id}", handle: routeResource.updater().patch},
	{method: "DELETE", path: "/api/routes/{id}", handle: routeResource.delete},

	{method: "GET", path: "/api/dns/nameservers", handle: nameserverGroupResource.list},
	{method: "POST", path: "/api/dns/nameservers", handle: nameserverGroupResource.create},
	{method: "GET", path: "/api/dns/nameservers/{id}", handle: nameserverGroupResource.get},
	{method: "PUT", path: "/api/dns/nameservers/{id}", handle: nameserverGroupResource.updater().put},
	{method: "PATCH", path: "/api/dns/nameservers/{id}", handle: nameserverGroupResource.updater().patch},
	{method: "DELETE", path: "/api/dns/nameservers/{id}", handle: nameserverGroupResource.delete},

	{method: "GET", path: "/api/dns/zones", handle: zoneResource.list},
	{method: "POST", path: "/api/dns/zones", handle: zoneResource.create},
	{method: "GET", path: "/api/dns/zones/{id}", handle: zoneResource.get},
	{method: "PUT", path: "/api/dns/zones/{id}", handle: zoneResource.updater().put},
	{method: "PATCH", path: "/api/dns/zones/{id}", handle: zoneResource.updater().patch},
	{method: "DELETE", path: "/api/dns/zones/{id}", handle: zoneResource.delete},

	{method: "GET", path: "/api/dns/settings", handle: (*server).getDNSSettings},
	{method: "PUT", path: "/api/dns/settings", handle: dnsSettingsUpdater.put},
	{method: "PATCH", path: "/api/dns/settings", handle: dnsSettingsUpdater.patch},
}
