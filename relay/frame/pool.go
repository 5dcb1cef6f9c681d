package frame

import "sync"

// SmallBuf is the capacity of pooled buffers; it holds a transport frame
// with a packet of the usual WireGuard sizes (MTU 1280..1500 plus overhead).
const SmallBuf = 2048

// BufPool recycles frame buffers on the data path. Buffers larger than
// SmallBuf are allocated and left to the garbage collector. The zero value
// is ready to use and safe for concurrent use.
type BufPool struct{ p sync.Pool }

// Get returns a zero-length buffer with capacity at least n.
func (bp *BufPool) Get(n int) *[]byte {
	if n > SmallBuf {
		b := make([]byte, 0, n)
		return &b
	}
	if v, ok := bp.p.Get().(*[]byte); ok {
		*v = (*v)[:0]
		return v
	}
	b := make([]byte, 0, SmallBuf)
	return &b
}

// Put returns b to the pool; b must not be used afterwards.
func (bp *BufPool) Put(b *[]byte) {
	if cap(*b) == SmallBuf {
		bp.p.Put(b)
	}
}
