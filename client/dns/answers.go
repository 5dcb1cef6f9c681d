package dns

import (
	"bytes"
	"time"

	mdns "github.com/miekg/dns"
)

// Pre-encoded answers: the UDP readers' fast path. Local-zone answers and
// cache hits are pure functions of the query's key (lower-cased name,
// type, EDNS and DO; wire.go), the compiled state, the cache's generation
// and, for cache hits, the second the TTL is counted in, up to the bytes
// copied from the query: the ID, the RD and CD bits, and the question name
// wherever the answer spells it like the question (the question itself,
// and local-zone owners, fixOwner). So each reader keeps the packed answer
// per key and answers a repeat by copying it and patching those bytes: no
// unpack, no chain, no pack.
//
// An answer is learnt from the full path, never built separately: after
// the full path answers a query the fast path could read, the reader asks
// the chain again with the question's case swapped (the probe) and keeps
// the answer only if the two differ in nothing but whole copies of the
// question name; their offsets are what a replay patches. An answer is
// kept only if it fits any client as it is (at most mdns.MinMsgSize bytes
// uncompressed, so finalize never truncates or compresses it), the answering handler is one memoizable knows, and
// the state did not change in between.
//
// Invalidation: the table belongs to one compiled state (any Apply starts
// it over); each answer records the cache generation (any setDomains, any
// stored lookup moves it) and, for cache hits, the end of its TTL second.
// A replay checks all three, so it is what the full path would send.
const (
	// maxAnswers bounds one reader's table; past it the table starts over.
	maxAnswers = 4096
	// maxWireName is the longest name on the wire (key scratch space).
	maxWireName = 255
)

// wireAnswer is one pre-encoded answer.
type wireAnswer struct {
	wire  []byte    // the answer; nil: the probe disagreed, take the full path
	names []uint16  // offsets of the copies of the question name in wire
	gen   uint64    // the cache generation it is valid for
	until time.Time // valid strictly before; zero: no expiry
	kind  handlerKind
	rcode int // for the query counters (metrics.go)
}

// write copies a into dst as the answer to pkt, whose question name ends
// at nameEnd.
func (a *wireAnswer) write(dst, pkt []byte, nameEnd int) []byte {
	out := append(dst[:0], a.wire...)
	out[0], out[1] = pkt[0], pkt[1]
	out[2] = out[2]&^wireRD | pkt[2]&wireRD
	out[3] = out[3]&^wireCD | pkt[3]&wireCD
	for _, o := range a.names {
		copy(out[o:], pkt[12:nameEnd])
	}
	return out
}

// answerTable is one reader's pre-encoded answers for one state. Only the
// reader's goroutine uses it.
type answerTable struct {
	st *state
	m  map[string]*wireAnswer
}

func (t *answerTable) reset(st *state) {
	t.st = st
	if t.m == nil {
		t.m = make(map[string]*wireAnswer)
	}
	clear(t.m)
}

func (t *answerTable) put(key []byte, a *wireAnswer) {
	if len(t.m) >= maxAnswers {
		clear(t.m)
	}
	t.m[string(key)] = a
}

// lookupAnswer returns the reader's answer for q if it is still valid.
func (u *udpReader) lookupAnswer(q *wireQuery) *wireAnswer {
	if st := u.r.state.Load(); u.answers.st != st {
		u.answers.reset(st)
		return nil
	}
	a := u.answers.m[string(q.key)]
	if a == nil || a.gen != u.r.cache.gen.Load() {
		return nil
	}
	if !a.until.IsZero() && !u.r.clock().Before(a.until) {
		return nil
	}
	return a
}

// learn keeps out, the full path's answer to pkt (read as q; unpacked as
// req; resp packed), which the chain gave on state st at cache generation
// gen, at or after now, if it can be replayed (see the top of the file).
func (u *udpReader) learn(pkt []byte, q *wireQuery, req, resp *mdns.Msg, out []byte, info answerInfo, st *state, gen uint64, now time.Time) {
	// resp.Compress: finalize's Truncate compressed (and maybe cut) it.
	if len(out) > mdns.MinMsgSize || resp.Compress || resp.Truncated || u.answers.st != st {
		return
	}
	qq := req.Question[0]
	until, ok := u.r.memoizable(info, lowerName(qq.Name), qq.Qtype, now, gen)
	if !ok {
		return
	}
	a := &wireAnswer{gen: gen, until: until, kind: kindOf(info), rcode: resp.Rcode}
	if q.letters {
		probe := append(u.probe[:0], pkt...)
		u.probe = probe
		swapCase(probe[12:q.nameEnd])
		var pout []byte
		if u.probeReq.Unpack(probe) == nil {
			if resp, pinfo := u.r.serveMsgInfo(u.probeCtx, u.probeReq, true); resp != needIO && resp != nil && pinfo.h == info.h {
				pout = u.pack(resp, u.probeOut)
			}
		}
		if u.r.state.Load() != st {
			return // the probe may have seen another state
		}
		if a.names, ok = nameCopies(out, pout, pkt[12:q.nameEnd], probe[12:q.nameEnd]); !ok {
			u.answers.put(q.key, a) // a.wire nil: do not probe this key again
			return
		}
	}
	a.wire = bytes.Clone(out)
	u.answers.put(q.key, a)
}

// memoizable says whether an answer by info's handler for name/qtype
// (given at cache generation gen, at or after now) is the same for every
// query with its key, and until when.
func (r *Resolver) memoizable(info answerInfo, name string, qtype uint16, now time.Time, gen uint64) (time.Time, bool) {
	switch info.h.(type) {
	case *zoneHandler, *searchHandler:
		// Before the local zone the chain asks only the cache (nothing
		// sits at PrioRoute yet), which passes on a name it does not
		// consider until the next setDomains (gen).
		return time.Time{}, !r.cache.considers(name, qtype)
	case *mgmtCache:
		return r.cache.hitUntil(cacheKey{name, qtype}, now, gen)
	}
	return time.Time{}, false
}

// nameCopies compares a and b, the answers to the same query spelled na
// and nb (same length, different case): they must be equal but for whole
// copies of the name, spelled na in a and nb in b, the first being the
// question's. It returns the offsets of the copies.
func nameCopies(a, b, na, nb []byte) ([]uint16, bool) {
	if len(a) != len(b) || len(a) < 12+len(na) {
		return nil, false
	}
	var offs []uint16
	for i := 0; i < len(a); {
		if i+len(na) <= len(a) && bytes.Equal(a[i:i+len(na)], na) && bytes.Equal(b[i:i+len(nb)], nb) {
			offs = append(offs, uint16(i))
			i += len(na)
			continue
		}
		if a[i] != b[i] {
			return nil, false
		}
		i++
	}
	if len(offs) == 0 || offs[0] != 12 {
		return nil, false
	}
	return offs, true
}
