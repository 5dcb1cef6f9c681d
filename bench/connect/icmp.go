package main

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"time"

	"petrel/lab"
)

// prober sends ICMP echo requests from inside a lab host's namespace
// every interval and reports the first reply from the target.
type prober struct {
	c  *net.IPConn
	id uint16
}

func newProber(h *lab.Host) (*prober, error) {
	var c *net.IPConn
	err := h.Do(func() error {
		pc, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
		if err != nil {
			return err
		}
		c = pc.(*net.IPConn)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &prober{c: c, id: uint16(os.Getpid())}, nil
}

func (p *prober) Close() error { return p.c.Close() }

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func echo(id, seq uint16) []byte {
	b := make([]byte, 16)
	b[0] = 8 // echo request
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], "petrelbc")
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

// firstReply sends echoes to dst every interval (errors such as "network
// unreachable" before the TUN exists are ignored) and returns when the
// first matching echo reply arrives.
func (p *prober) firstReply(ctx context.Context, dst net.IP, interval time.Duration) (time.Time, error) {
	got := make(chan time.Time, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			_ = p.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, from, err := p.c.ReadFrom(buf)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				return
			}
			ip, ok := from.(*net.IPAddr)
			if !ok || !ip.IP.Equal(dst) || n < 8 || buf[0] != 0 || binary.BigEndian.Uint16(buf[4:]) != p.id {
				continue
			}
			got <- time.Now()
			return
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	var seq uint16
	for {
		seq++
		_, _ = p.c.WriteTo(echo(p.id, seq), &net.IPAddr{IP: dst})
		select {
		case at := <-got:
			return at, nil
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}
