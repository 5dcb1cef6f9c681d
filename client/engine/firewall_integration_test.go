package engine_test

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"petrel/client/engine"
	"petrel/management/model"
)

func (m *mesh) put(obj model.Object) model.Object {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := m.srv.Management().Put(ctx, m.acct, obj)
	if err != nil {
		m.t.Fatal(err)
	}
	return out
}

// onlyPolicy replaces every policy of the account by one with rules.
func (m *mesh) onlyPolicy(id string, rules ...model.PolicyRule) string {
	m.t.Helper()
	acct, err := m.srv.Management().Snapshot(m.acct)
	if err != nil {
		m.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for pid := range acct.Policies {
		if pid != id {
			if err := m.srv.Management().Delete(ctx, m.acct, model.KindPolicy, pid); err != nil {
				m.t.Fatal(err)
			}
		}
	}
	return m.put(&model.Policy{ID: id, Name: "test", Enabled: true, Rules: rules}).(*model.Policy).ID
}

func (m *mesh) group(name string, members ...*engine.Engine) string {
	var ids []string
	for _, e := range members {
		ids = append(ids, m.peerID(e))
	}
	return m.put(&model.Group{Name: name, PeerIDs: ids}).(*model.Group).ID
}

func dialOverlay(from *engine.Engine, ip netip.Addr, port int, within time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return from.Netstack().DialContext(ctx, "tcp", netip.AddrPortFrom(ip, uint16(port)).String())
}

func pingOnce(from *engine.Engine, ip netip.Addr) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _, err := from.Ping(ctx, ip)
	return err
}

// echo serves a TCP echo on the engine's overlay address.
func echo(t *testing.T, e *engine.Engine, ip netip.Addr, port int) {
	ln, err := e.Netstack().ListenTCP(&net.TCPAddr{IP: ip.AsSlice(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// The access policy is enforced in the agents (netstack mode): only
// dev -> db tcp/5432 is allowed; an ICMP rule added later applies to the
// next packet; removing the tcp rule cuts the established connection.
func TestFirewallEnforcesPolicy(t *testing.T) {
	m := newMesh(t)
	dev, db := m.addAgent("dev"), m.addAgent("db")
	devIP, dbIP := overlayIP(t, dev), overlayIP(t, db)
	checkPing(t, dev, db) // the default All <-> All policy: everything flows
	gDev, gDB := m.group("dev", dev), m.group("db", db)
	tcp5432 := model.PolicyRule{Name: "pg", Sources: []string{gDev}, Destinations: []string{gDB},
		Protocol: model.ProtoTCP, Ports: []model.PortRange{{Start: 5432, End: 5432}}, Action: model.ActionAccept}
	pid := m.onlyPolicy("", tcp5432)
	echo(t, db, dbIP, 5432)
	echo(t, db, dbIP, 22)
	echo(t, dev, devIP, 8080)

	waitFor(t, "ICMP dev -> db blocked", 20*time.Second, func() (bool, string) {
		err := pingOnce(dev, dbIP)
		return err != nil, "ping still answers"
	})
	var pg net.Conn
	waitFor(t, "dev reaches db:5432", 20*time.Second, func() (bool, string) {
		c, err := dialOverlay(dev, dbIP, 5432, 2*time.Second)
		if err != nil {
			return false, err.Error()
		}
		pg = c
		return true, ""
	})
	defer pg.Close()
	roundTrip := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		return err
	}
	if err := roundTrip(pg); err != nil {
		t.Fatalf("dev -> db:5432 round trip: %v", err)
	}
	if c, err := dialOverlay(dev, dbIP, 22, 2*time.Second); err == nil {
		c.Close()
		t.Fatal("dev reached db:22")
	}
	if c, err := dialOverlay(db, devIP, 8080, 2*time.Second); err == nil {
		c.Close()
		t.Fatal("db opened a connection to dev")
	}
	for _, e := range []*engine.Engine{dev, db} { // dev's :22 and db's :8080 attempts never left
		if st := e.Status(); len(st.Peers) != 1 || st.Peers[0].Firewall == nil || st.Peers[0].Firewall.OutDropped == 0 {
			t.Fatalf("firewall counters %+v", st.Peers)
		}
	}

	icmp := model.PolicyRule{Name: "icmp", Sources: []string{gDev}, Destinations: []string{gDB},
		Protocol: model.ProtoICMP, Action: model.ActionAccept}
	m.put(&model.Policy{ID: pid, Name: "test", Enabled: true, Rules: []model.PolicyRule{tcp5432, icmp}})
	waitFor(t, "ICMP rule applies", 20*time.Second, func() (bool, string) {
		err := pingOnce(dev, dbIP)
		return err == nil, "no echo reply"
	})
	if err := roundTrip(pg); err != nil {
		t.Fatalf("established connection cut by an unrelated change: %v", err)
	}

	m.put(&model.Policy{ID: pid, Name: "test", Enabled: true, Rules: []model.PolicyRule{icmp}})
	waitFor(t, "removing tcp/5432 cuts the established connection", 20*time.Second, func() (bool, string) {
		err := roundTrip(pg)
		return err != nil, "round trip still works"
	})
}
