package restapi

// route is one REST endpoint. The table below is the single list of what
// the API serves: New registers it on the ServeMux and the spec test checks
// it against openapi.yaml in both directions.
type route struct {
	method string // GET, POST, PUT, DELETE
	path   string // ServeMux path with {wildcards}
	handle handleFunc
	public bool // served without a token
}

func (r route) pattern() string { return r.method + " " + r.path }

var routes = []route{
	{method: "GET", path: "/api/openapi.yaml", handle: (*server).getSpec, public: true},

	{method: "GET", path: "/api/accounts", handle: (*server).listAccounts},
	{method: "GET", path: "/api/accounts/{id}", handle: (*server).getAccount},

	{method: "GET", path: "/api/peers", handle: (*server).listPeers},
	{method: "GET", path: "/api/peers/{id}", handle: (*server).getPeer},
	{method: "PUT", path: "/api/peers/{id}", handle: (*server).updatePeer},
	{method: "DELETE", path: "/api/peers/{id}", handle: (*server).deletePeer},

	{method: "GET", path: "/api/groups", handle: (*server).listGroups},
	{method: "POST", path: "/api/groups", handle: (*server).createGroup},
	{method: "GET", path: "/api/groups/{id}", handle: (*server).getGroup},
	{method: "PUT", path: "/api/groups/{id}", handle: (*server).updateGroup},
	{method: "DELETE", path: "/api/groups/{id}", handle: (*server).deleteGroup},

	{method: "GET", path: "/api/setup-keys", handle: (*server).listSetupKeys},
	{method: "POST", path: "/api/setup-keys", handle: (*server).createSetupKey},
	{method: "GET", path: "/api/setup-keys/{id}", handle: (*server).getSetupKey},
	{method: "PUT", path: "/api/setup-keys/{id}", handle: (*server).updateSetupKey},
	{method: "DELETE", path: "/api/setup-keys/{id}", handle: (*server).deleteSetupKey},

	{method: "GET", path: "/api/policies", handle: (*server).listPolicies},
	{method: "POST", path: "/api/policies", handle: (*server).createPolicy},
	{method: "GET", path: "/api/policies/check", handle: (*server).checkPolicy},
	{method: "GET", path: "/api/policies/{id}", handle: (*server).getPolicy},
	{method: "PUT", path: "/api/policies/{id}", handle: (*server).updatePolicy},
	{method: "DELETE", path: "/api/policies/{id}", handle: (*server).deletePolicy},

	{method: "GET", path: "/api/routes", handle: (*server).listRoutes},
	{method: "POST", path: "/api/routes", handle: (*server).createRoute},
	{method: "GET", path: "/api/routes/{id}", handle: (*server).getRoute},
	{method: "PUT", path: "/api/routes/{id}", handle: (*server).updateRoute},
	{method: "DELETE", path: "/api/routes/{id}", handle: (*server).deleteRoute},

	{method: "GET", path: "/api/dns/nameservers", handle: (*server).listNameserverGroups},
	{method: "POST", path: "/api/dns/nameservers", handle: (*server).createNameserverGroup},
	{method: "GET", path: "/api/dns/nameservers/{id}", handle: (*server).getNameserverGroup},
	{method: "PUT", path: "/api/dns/nameservers/{id}", handle: (*server).updateNameserverGroup},
	{method: "DELETE", path: "/api/dns/nameservers/{id}", handle: (*server).deleteNameserverGroup},

	{method: "GET", path: "/api/dns/zones", handle: (*server).listZones},
	{method: "POST", path: "/api/dns/zones", handle: (*server).createZone},
	{method: "GET", path: "/api/dns/zones/{id}", handle: (*server).getZone},
	{method: "PUT", path: "/api/dns/zones/{id}", handle: (*server).updateZone},
	{method: "DELETE", path: "/api/dns/zones/{id}", handle: (*server).deleteZone},

	{method: "GET", path: "/api/dns/settings", handle: (*server).getDNSSettings},
	{method: "PUT", path: "/api/dns/settings", handle: (*server).updateDNSSettings},
}
