package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// Ping runs the system `ping -c count` from the agent's namespace to ip.
func (a *Agent) Ping(ctx context.Context, ip string, count int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(count)*2*time.Second+10*time.Second)
	defer cancel()
	return a.Host.Run(ctx, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2", ip)
}

// WaitPing pings ip once at a time until a reply arrives, for up to timeout.
func (a *Agent) WaitPing(ctx context.Context, ip string, timeout time.Duration) error {
	var last error
	err := poll(ctx, timeout, 200*time.Millisecond, func() bool {
		_, last = a.Ping(ctx, ip, 1)
		return last == nil
	})
	if err != nil {
		return fmt.Errorf("ping %s from %s: %w (last: %v)", ip, a.Name, err, last)
	}
	return nil
}

// Transfer sends n pseudo-random bytes over TCP from agent `from` to a
// listener on agent `to`'s overlay address and checks count and SHA-256 on
// the receiving side.
func Transfer(ctx context.Context, from, to *Agent, toIP string, n int64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ln, err := to.Host.ListenTCP(net.JoinHostPort(toIP, "0"))
	if err != nil {
		return err
	}
	defer ln.Close()
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		h := sha256.New()
		m, err := io.Copy(h, c)
		var r result
		r.n, r.err = m, err
		copy(r.sum[:], h.Sum(nil))
		if err == nil {
			_, r.err = c.Write([]byte{1}) // ack: everything arrived
		}
		got <- r
	}()
	c, err := from.Host.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(newRandReader(), n), h)
	if _, err := io.Copy(c, src); err != nil {
		return fmt.Errorf("send %d bytes %s→%s: %w", n, from.Name, to.Name, err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		return fmt.Errorf("wait for ack %s→%s: %w", from.Name, to.Name, err)
	}
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		return fmt.Errorf("transfer %s→%s: %w", from.Name, to.Name, ctx.Err())
	}
	if r.err != nil {
		return fmt.Errorf("receive on %s: %w", to.Name, r.err)
	}
	var want [32]byte
	copy(want[:], h.Sum(nil))
	if r.n != n || r.sum != want {
		return fmt.Errorf("transfer %s→%s: received %d bytes (sum match %v), sent %d", from.Name, to.Name, r.n, r.sum == want, n)
	}
	return nil
}

type randReader struct{ r *rand.ChaCha8 }

func newRandReader() io.Reader {
	var seed [32]byte
	return randReader{rand.NewChaCha8(seed)}
}

func (r randReader) Read(p []byte) (int, error) { return r.r.Read(p) }
