package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/pion/turn/v5"

	"petrel/internal/keys"
	"petrel/relay/auth"
	"petrel/relay/client"
)

func newKey() (keys.Public, error) {
	k, err := keys.NewPrivate()
	if err != nil {
		return keys.Public{}, err
	}
	return k.Public(), nil
}

// setupPetrel connects A and B to the relay as two Petrel relay clients.
func setupPetrel(o options, p *pair) error {
	secret, err := auth.LoadOrCreateSecret(o.secretFile)
	if err != nil {
		return err
	}
	aPub, err := newKey()
	if err != nil {
		return err
	}
	bPub, err := newKey()
	if err != nil {
		return err
	}
	mk := func(pub keys.Public, recv func([]byte)) (*client.Client, error) {
		c := client.New(client.Config{URLs: []string{o.relayURL}, Key: pub,
			Token: func() string { return auth.Mint(secret, pub, time.Now().Add(time.Hour)) }})
		c.SetReceiver(func(_ keys.Public, _ string, pkt []byte) { recv(pkt) })
		if err := c.Start(context.Background()); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(10 * time.Second)
		for !c.Connected() {
			if time.Now().After(deadline) {
				c.Stop()
				return nil, fmt.Errorf("relay client did not connect")
			}
			time.Sleep(5 * time.Millisecond)
		}
		return c, nil
	}
	a, err := mk(aPub, p.onA)
	if err != nil {
		return err
	}
	b, err := mk(bPub, p.onB)
	if err != nil {
		a.Stop()
		return err
	}
	p.sendAB = func(pkt []byte) error { return a.Send(bPub, "", pkt) }
	p.sendBA = func(pkt []byte) error { return b.Send(aPub, "", pkt) }
	p.close = func() { a.Stop(); b.Stop() }
	return nil
}

// setupTURN gives A an allocation on the TURN server; B is a plain UDP
// socket that talks to A's relayed address (one relay hop, like Petrel).
func setupTURN(o options, p *pair) error {
	connA, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tc, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: o.turnAddr, TURNServerAddr: o.turnAddr, Conn: connA,
		Username: "u", Password: "p", Realm: "lab",
	})
	if err != nil {
		connA.Close()
		return err
	}
	if err := tc.Listen(); err != nil {
		tc.Close()
		connA.Close()
		return err
	}
	relayConn, err := tc.Allocate()
	if err != nil {
		tc.Close()
		connA.Close()
		return fmt.Errorf("allocate: %w", err)
	}
	connB, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	setBuffers(connB)
	if u, ok := connA.(*net.UDPConn); ok {
		setBuffers(u)
	}
	bAddr := connB.LocalAddr()
	relayed := relayConn.LocalAddr()
	p.sendAB = func(pkt []byte) error { _, err := relayConn.WriteTo(pkt, bAddr); return err }
	p.sendBA = func(pkt []byte) error { _, err := connB.WriteTo(pkt, relayed); return err }
	go readLoop(relayConn, p.onA)
	go readLoop(connB, p.onB)
	p.close = func() { relayConn.Close(); tc.Close(); connA.Close(); connB.Close() }
	// The first WriteTo installs the permission (and channel binding).
	deadline := time.Now().Add(5 * time.Second)
	for p.recvB.Load() == 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("no packet through the TURN relay (loopback peers allowed?)")
		}
		p.sendAB([]byte("warmup"))
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// setupDirect is the baseline: plain UDP between A and B on loopback.
func setupDirect(p *pair) error {
	a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		a.Close()
		return err
	}
	aa, ba := a.LocalAddr(), b.LocalAddr()
	p.sendAB = func(pkt []byte) error { _, err := a.WriteTo(pkt, ba); return err }
	p.sendBA = func(pkt []byte) error { _, err := b.WriteTo(pkt, aa); return err }
	go readLoop(a, p.onA)
	go readLoop(b, p.onB)
	p.close = func() { a.Close(); b.Close() }
	return nil
}

func setBuffers(c *net.UDPConn) {
	c.SetReadBuffer(4 << 20)
	c.SetWriteBuffer(4 << 20)
}

func readLoop(c net.PacketConn, f func([]byte)) {
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		f(buf[:n])
	}
}
