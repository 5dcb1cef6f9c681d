package ha

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxy is a round-robin TCP load balancer without stickiness, like an
// HAProxy in `mode tcp` with `balance roundrobin`: each accepted
// connection goes to the next backend that accepts a connection. It dials
// the backend from the client's own source address (the loopback network
// is all local), so the servers' per-source limits see the agents' sources.
type proxy struct {
	ln       net.Listener
	backends []string

	next   atomic.Uint64
	mu     sync.Mutex
	conns  map[*pair]struct{}
	closed bool
	wg     sync.WaitGroup
}

// pair is one proxied connection.
type pair struct {
	client, server net.Conn
	backend        int
}

// newProxy listens; start begins serving once the backends are known
// (they need the proxy's address first).
func newProxy() (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &proxy{ln: ln, conns: map[*pair]struct{}{}}, nil
}

func (p *proxy) start(backends []string) {
	p.backends = backends
	p.wg.Add(1)
	go p.serve()
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(c)
		}()
	}
}

// handle dials backends in turn, starting at the next one, until one
// accepts; a client whose every backend refuses is closed.
func (p *proxy) handle(c net.Conn) {
	src := c.RemoteAddr().(*net.TCPAddr)
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: src.IP}}
	start := int(p.next.Add(1))
	for i := range p.backends {
		b := (start + i) % len(p.backends)
		s, err := d.Dial("tcp", p.backends[b])
		if err != nil {
			continue
		}
		p.pipe(&pair{client: c, server: s, backend: b})
		return
	}
	_ = c.Close()
}

// pipe copies both ways; when either side ends, both are closed (a killed
// backend's connections end for the client too, as behind a real proxy).
func (p *proxy) pipe(pr *pair) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = pr.client.Close()
		_ = pr.server.Close()
		return
	}
	p.conns[pr] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(pr.server, pr.client)
	go cp(pr.client, pr.server)
	<-done
	_ = pr.client.Close()
	_ = pr.server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, pr)
	p.mu.Unlock()
}

// perBackend counts the open connections to each backend.
func (p *proxy) perBackend() []int {
	n := make([]int, len(p.backends))
	p.mu.Lock()
	defer p.mu.Unlock()
	for pr := range p.conns {
		n[pr.backend]++
	}
	return n
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for pr := range p.conns {
		_ = pr.client.Close()
		_ = pr.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
