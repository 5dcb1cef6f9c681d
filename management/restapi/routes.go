package restapi

// route is one REST endpoint. The table below is the single list of what
// the API serves: New registers it on the ServeMux and the spec test checks
// it against openapi.yaml in both directions.
type route struct {
	method string // GET, POST, PUT, PATCH, DELETE
	path   string // ServeMux path with {wildcards}
	handle handleFunc
	public bool // served without a token
}

func (r route) pattern() string { return r.method + " " + r.path }

var routes = []route{
	{method: "GET", path: "/api/openapi.yaml", handle: (*server).getSpec, public: true},

	{method: "GET", path: "/api/accounts", handle: (*server).listAccounts},
	{method: "GET", path: "/api/accounts/{id}", handle: (*server).getAccount},

	{method: "GET", path: "/api/peers", handle: peerResource.list},
	{method: "GET", path: "/api/peers/{id}", handle: peerResource.get},
	{method: "PUT", path: "/api/peers/{id}", handle: peerUpdater.put},
	{method: "PATCH", path: "/api/peers/{id}", handle: peerUpdater.patch},
	{method: "DELETE", path: "/api/peers/{id}", handle: peerResource.delete},

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
