package relay

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"

	"petrel/relay/internal/cork"
)

// Write coalescing on the server: the read goroutine of a source connection
// corks every destination it writes to while its read buffer still holds
// bytes (more frames follow without a syscall) and uncorks them all before
// it reads from the socket again. A write goroutine corks its own connection
// while its queue is not empty and uncorks when it drains.

// readBufSize is the per-connection socket read buffer: enough to pick up a
// burst of a dozen packets with one read syscall.
const readBufSize = 16 << 10

// hijackWriter hands the websocket library our own buffered reader and a
// corkable connection when it hijacks the HTTP connection.
type hijackWriter struct {
	http.ResponseWriter
	mu sync.Mutex
	cc *cork.Conn
	br *bufio.Reader
}

func (h *hijackWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack relay connection: not supported by this server")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	cc := cork.New(nc)
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		cc.Prefix = append([]byte(nil), b...)
	}
	br := bufio.NewReaderSize(cc, readBufSize)
	h.mu.Lock()
	h.cc, h.br = cc, br
	h.mu.Unlock()
	return cc, bufio.NewReadWriter(br, bufio.NewWriterSize(cc, 8<<10)), nil
}

func (h *hijackWriter) hijacked() (*cork.Conn, *bufio.Reader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cc, h.br
}
