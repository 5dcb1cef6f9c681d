package model

// PutObject puts obj into the matching map of a (replacing the object of
// the same ID) and reports whether a knows its kind. a's maps must exist.
func (a *Account) PutObject(obj Object) bool {
	switch o := obj.(type) {
	case *Peer:
		a.Peers[o.ID] = o
	case *Group:
		a.Groups[o.ID] = o
	case *SetupKey:
		a.SetupKeys[o.ID] = o
	case *Policy:
		a.Policies[o.ID] = o
	case *Route:
		a.Routes[o.ID] = o
	case *NameserverGroup:
		a.NameserverGroups[o.ID] = o
	case *DNSZone:
		a.DNSZones[o.ID] = o
	case *AdminToken:
		a.AdminTokens[o.ID] = o
	case *User:
		a.Users[o.ID] = o
	case *AccessToken:
		a.AccessTokens[o.ID] = o
	default:
		return false
	}
	return true
}

// DeleteObject removes the object of kind k and ID id from a (nothing if
// a has none) and reports whether a knows the kind.
func (a *Account) DeleteObject(k Kind, id string) bool {
	switch k {
	case KindPeer:
		delete(a.Peers, id)
	case KindGroup:
		delete(a.Groups, id)
	case KindSetupKey:
		delete(a.SetupKeys, id)
	case KindPolicy:
		delete(a.Policies, id)
	case KindRoute:
		delete(a.Routes, id)
	case KindNameserverGroup:
		delete(a.NameserverGroups, id)
	case KindDNSZone:
		delete(a.DNSZones, id)
	case KindAdminToken:
		delete(a.AdminTokens, id)
	case KindUser:
		delete(a.Users, id)
	case KindAccessToken:
		delete(a.AccessTokens, id)
	default:
		return false
	}
	return true
}
