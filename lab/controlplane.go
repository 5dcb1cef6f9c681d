package lab

import (
	"fmt"
	"net/netip"
)

// Fixed addresses of the control-plane hosts AddControlPlane creates.
var (
	ServerAddr  = netip.MustParseAddr("203.0.113.10") // mgmt.lab.test, stun.lab.test
	RelayEUAddr = netip.MustParseAddr("203.0.113.21") // eu-1.relay.lab.test
	RelayUSAddr = netip.MustParseAddr("203.0.113.22") // us-1.relay.lab.test
)

// ControlPlane is the standard set of hosts on the internet bridge. The lab
// starts no Petrel process: tests start petrel-server and the relays in
// these hosts with Host.Start.
type ControlPlane struct {
	Server *Host   // "server" at ServerAddr
	Relays []*Host // "eu-1" at RelayEUAddr, "us-1" at RelayUSAddr
	DNS    *DNS    // serves StandardRecords at DNSAddr
}

// StandardRecords returns the control-plane names: MgmtName and StunName →
// server, RelayPoolName → both relay instances, RelayEU/RelayUS → each.
func StandardRecords() *Records {
	r := NewRecords()
	r.Set(MgmtName, ServerAddr)
	r.Set(StunName, ServerAddr)
	r.Set(RelayPoolName, RelayEUAddr, RelayUSAddr)
	r.Set(RelayEU, RelayEUAddr)
	r.Set(RelayUS, RelayUSAddr)
	return r
}

// AddControlPlane creates the internet bridge, the server and two relay
// hosts, and starts the lab DNS server with StandardRecords.
func (l *Lab) AddControlPlane() (*ControlPlane, error) {
	cp := &ControlPlane{}
	var err error
	if cp.Server, err = l.AddServerHost("server", ServerAddr); err != nil {
		return nil, fmt.Errorf("add control plane: %w", err)
	}
	for _, r := range []struct {
		name string
		ip   netip.Addr
	}{{"eu-1", RelayEUAddr}, {"us-1", RelayUSAddr}} {
		h, err := l.AddServerHost(r.name, r.ip)
		if err != nil {
			return nil, fmt.Errorf("add control plane: %w", err)
		}
		cp.Relays = append(cp.Relays, h)
	}
	if cp.DNS, err = l.StartDNS(StandardRecords()); err != nil {
		return nil, fmt.Errorf("add control plane: %w", err)
	}
	return cp, nil
}
