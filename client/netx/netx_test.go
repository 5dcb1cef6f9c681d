package netx

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestListenUDPAndDial(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	uc, err := ListenUDP(ctx, nil, "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	checkMark(t, uc)

	ln, err := ListenConfig(nil).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = c.Write([]byte("ok"))
			c.Close()
		}
		accepted <- err
	}()
	c, err := Dialer(nil).DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkMark(t, c.(*net.TCPConn))
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
}

func TestListenUDPBadNetwork(t *testing.T) {
	if _, err := ListenUDP(context.Background(), nil, "tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("expected error for tcp network")
	}
}

func checkMark(t *testing.T, c interface {
	SyscallConn() (syscall.RawConn, error)
}) {
	t.Helper()
	if !MarkSupported {
		return
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	mark, err := GetMark(rc)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Logf("not root: mark is %#x (unmarked fallback expected)", mark)
		return
	}
	if mark != Mark {
		t.Fatalf("mark = %#x, want %#x", mark, Mark)
	}
}
