package daemon

import (
	"maps"

	dnshost "petrel/client/dns/host"
	"petrel/client/route"
	"petrel/client/wg"
)

// HostUndoers returns the undo function of every kind of host change the
// agent journals: the interface (client/wg), routes, rules, sysctls and
// nftables tables (client/route), resolv.conf and systemd-resolved link
// settings (client/dns/host).
func HostUndoers() map[string]Undoer {
	m := map[string]Undoer{
		"link": func(e Entry) error { return wg.DeleteInterface(e.Name) },
	}
	add := func(src map[string]func(name string, data map[string]string) error) {
		for kind, fn := range maps.All(src) {
			m[kind] = func(e Entry) error { return fn(e.Name, e.Data) }
		}
	}
	add(route.Undoers())
	add(dnshost.Undoers())
	return m
}
