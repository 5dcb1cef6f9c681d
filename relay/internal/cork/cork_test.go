package cork

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

func TestCorkCoalescesAndKeepsOrder(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	cc := New(a)
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()
	var want bytes.Buffer
	if !cc.Cork() {
		t.Fatal("first Cork reported already corked")
	}
	if cc.Cork() {
		t.Fatal("second Cork reported newly corked")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				msg := []byte{byte(i), byte(j), 0xee}
				mu.Lock() // the caller's write lock, as in the relay
				cc.Write(msg)
				want.Write(msg)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// net.Pipe is synchronous: nothing may have been written while corked.
	if err := cc.Uncork(); err != nil {
		t.Fatal(err)
	}
	cc.Write([]byte("tail"))
	want.WriteString("tail")
	a.Close()
	if g := <-got; !bytes.Equal(g, want.Bytes()) {
		t.Fatalf("stream differs: got %d bytes want %d", len(g), want.Len())
	}
}

func TestCorkFlushesWhenFull(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	cc := New(a)
	cc.Cork()
	done := make(chan int)
	go func() {
		buf := make([]byte, 2*MaxCorked)
		n, _ := io.ReadAtLeast(b, buf, MaxCorked)
		done <- n
	}()
	cc.Write(make([]byte, MaxCorked)) // reaching the bound forces a flush
	if n := <-done; n < MaxCorked {
		t.Fatalf("read %d", n)
	}
	a.Close()
}

func TestPrefixReadFirst(t *testing.T) {
	a, b := net.Pipe()
	cc := New(a)
	cc.Prefix = []byte("pre")
	go func() { b.Write([]byte("fix")); b.Close() }()
	all, _ := io.ReadAll(cc)
	if string(all) != "prefix" {
		t.Fatalf("got %q", all)
	}
}
