package dns

import (
	"context"
	"sort"

	mdns "github.com/miekg/dns"
)

// Handler priorities (docs/dns.md, "Handler chain"). Higher runs first.
const (
	PrioMgmtCache  = 150
	PrioRoute      = 100 // route interceptors, not built yet (see memoizable in answers.go)
	PrioLocalZone  = 75
	PrioMatchGroup = 50
	PrioPrimary    = 1
	PrioOriginal   = -100
)

// handler is one link of the resolver chain, in the shape of CoreDNS's
// plugin.Handler with the "call next" made explicit by the return value:
//
//   - ServeDNS answers q and returns the response with a short note of how
//     it answered ("cache fresh", "upstream 10.0.0.1:53"), or returns a nil
//     message to pass q on to the next matching handler.
//   - It must not modify q or keep it after returning, and must honour ctx.
//   - The returned message is owned by the caller (the server fixes up ID,
//     question, EDNS and truncation).
//   - It is called from many goroutines at once.
type handler interface {
	Name() string
	ServeDNS(ctx context.Context, q *mdns.Msg) (*mdns.Msg, string)
}

// Inline answering (the UDP readers, udp.go). A UDP reader first runs a
// query through the chain with an inline context (inlineCtx): only handlers
// that implement inlineSafe are called, and each of them either answers
// from memory or returns needIO instead of doing anything that can block
// (an upstream exchange, waiting on a cache lookup). needIO, or reaching a
// handler that is not inlineSafe, makes chain.resolve return needIO, and
// the reader hands the query to a slow-path goroutine that runs the chain
// again from the start with an ordinary context. Inline-safe handlers have
// no side effects before they return needIO, so the second run sees what
// the first one saw. needIO never leaves the package: only the inline
// context produces it, and only the UDP readers use that context.
type inlineSafe interface {
	handler
	// inlineSafe marks ServeDNS as honouring the inline context.
	inlineSafe()
}

// needIO is the sentinel answer "this query needs I/O; not inline".
var needIO = new(mdns.Msg)

type inlineKey struct{}

// inlineCtx returns a child of parent that marks the inline pass.
func inlineCtx(parent context.Context) context.Context {
	return context.WithValue(parent, inlineKey{}, true)
}

// isInline reports whether ctx is an inline pass (see inlineSafe).
func isInline(ctx context.Context) bool {
	v, _ := ctx.Value(inlineKey{}).(bool)
	return v
}

// link registers a handler for one domain at one priority.
type link struct {
	prio   int
	domain string // canonical; "." matches everything
	labels int
	h      handler
	inline bool // h implements inlineSafe
}

// chain is an immutable, ordered list of links: priority descending, then
// most specific domain first, then registration order.
type chain struct {
	links []link
}

func newChain(links []link) *chain {
	for i := range links {
		links[i].labels = labelCount(links[i].domain)
		_, links[i].inline = links[i].h.(inlineSafe)
	}
	sort.SliceStable(links, func(i, j int) bool {
		if links[i].prio != links[j].prio {
			return links[i].prio > links[j].prio
		}
		return links[i].labels > links[j].labels
	})
	return &chain{links: links}
}

// answerInfo says which link answered a query and how.
type answerInfo struct {
	Handler  string
	Priority int
	Domain   string
	How      string
	h        handler // the handler itself (nil: the server, or nobody)
}

// resolve walks the links whose priority is at most maxPrio and whose
// domain contains q's name, until one answers. A handler registered for
// several matching domains is asked once. A nil message means nobody
// answered (or ctx ended). On an inline context (see inlineSafe) it
// returns needIO as soon as a handler would need I/O.
func (c *chain) resolve(ctx context.Context, q *mdns.Msg, maxPrio int) (*mdns.Msg, answerInfo) {
	name := lowerName(q.Question[0].Name)
	inline := isInline(ctx)
	var tried [8]handler
	asked := tried[:0]
	for _, l := range c.links {
		if l.prio > maxPrio || !inDomain(name, l.domain) || contains(asked, l.h) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if inline && !l.inline {
			return needIO, answerInfo{}
		}
		asked = append(asked, l.h)
		if resp, how := l.h.ServeDNS(ctx, q); resp != nil {
			if resp == needIO {
				return needIO, answerInfo{}
			}
			return resp, answerInfo{Handler: l.h.Name(), Priority: l.prio, Domain: l.domain, How: how, h: l.h}
		}
	}
	return nil, answerInfo{}
}

func contains(hs []handler, h handler) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

// lowerName lower-cases an ASCII name without allocating when it already is.
func lowerName(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// reply builds an empty response to q with the given rcode.
func reply(q *mdns.Msg, rcode int) *mdns.Msg {
	m := new(mdns.Msg)
	m.SetRcode(q, rcode)
	m.RecursionAvailable = true
	return m
}
