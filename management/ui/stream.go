package ui

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"petrel/management"
)

// Event stream timing: peer events arriving within streamCoalesce go out
// as one message; every streamRecheck the stream re-checks its session
// (and sends a comment, which keeps proxies from timing it out).
const (
	streamCoalesce = 250 * time.Millisecond
	streamRecheck  = 15 * time.Second
)

// stream serves /ui/events/stream: server-sent events telling the page
// that peers it may show changed status. "peers" carries the changed peer
// IDs (space-separated; empty after a resync); "paths" the peers whose
// path report changed (the matrix: a matrix page's stream names only the
// peers on that page, and sends nothing for others); "signout" says the session
// ended. The page refetches its rows on either (htmx's SSE extension),
// so every filter, role and page rule of the rows stays on the server.
func (h *Handler) stream(rq *req) error {
	// The server bounds each request's read and write time; a stream
	// lives as long as the page is open.
	rc := http.NewResponseController(rq.w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	// Subscribe before the first byte: a client that sees the stream open
	// must not miss an event published right after.
	ctx := rq.ctx()
	events := h.svc.WatchPeers(ctx)
	w := rq.w
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 5000\n: connected\n\n"); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}
	// A matrix page's stream: "paths" only when a changed peer is on
	// the page (the page's filters and number are in the query, and the
	// page is recomputed at each message, as its cells are).
	matrix := rq.r.URL.Query().Has(matrixStreamParam)
	onPage := func(ids []string) []string {
		if !matrix || len(ids) == 0 {
			return ids
		}
		f, err := parsePeerFilter(rq.r.URL.Query(), rq.acct)
		if err != nil {
			f = peerFilter{Page: 1} // what the page shows then
		}
		page, _, _, _ := h.matrixPage(rq, f)
		in := make(map[string]bool, len(page))
		for _, p := range page {
			in[p.ID] = true
		}
		return slices.DeleteFunc(ids, func(id string) bool { return !in[id] })
	}
	tick := time.NewTicker(streamRecheck)
	defer tick.Stop()
	var (
		changed = map[string]bool{}
		paths   = map[string]bool{} // peers whose path report changed
		resync  bool
		flush   <-chan time.Time
	)
	send := func(msg string) bool {
		if _, err := fmt.Fprint(w, msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok { // the service is stopping
				return nil
			}
			if !ev.Resync && ev.AccountID != rq.acct.ID {
				continue
			}
			switch {
			case ev.Resync:
				resync = true
			case ev.Paths:
				paths[ev.PeerID] = true
			default:
				changed[ev.PeerID] = true
			}
			if flush == nil {
				flush = time.After(streamCoalesce)
			}
		case <-flush:
			flush = nil
			p, ok := h.stillSignedIn(rq)
			if !ok {
				send("event: signout\ndata: \n\n")
				return nil
			}
			// Users hear only of their own peers; a removed peer is
			// no longer in the account, so its removal reaches admins
			// only.
			visible := func(set map[string]bool) []string {
				var ids []string
				for id := range set {
					if pr := rq.acct.Peers[id]; p.IsAdmin() || pr != nil && pr.UserID != "" && pr.UserID == p.UserID {
						ids = append(ids, id)
					}
				}
				clear(set)
				return ids
			}
			ids, pathIDs := visible(changed), onPage(visible(paths))
			if len(ids) > 0 || resync {
				resync = false
				if !send("event: peers\ndata: " + strings.Join(ids, " ") + "\n\n") {
					return nil
				}
			}
			// "paths": peers whose path report changed (the matrix).
			if len(pathIDs) > 0 && !send("event: paths\ndata: "+strings.Join(pathIDs, " ")+"\n\n") {
				return nil
			}
		case <-tick.C:
			if _, ok := h.stillSignedIn(rq); !ok {
				send("event: signout\ndata: \n\n")
				return nil
			}
			if !send(": ping\n\n") {
				return nil
			}
		}
	}
}

// stillSignedIn re-checks the stream's session and token, refreshing
// rq.acct; a session that no longer authenticates is removed.
func (h *Handler) stillSignedIn(rq *req) (management.Principal, bool) {
	sess, ok := h.sessions.peek(rq.sid)
	if !ok {
		return management.Principal{}, false
	}
	acct, err := h.svc.Snapshot(sess.principal.AccountID)
	if err != nil {
		return management.Principal{}, false
	}
	p, err := h.svc.Recheck(sess.principal, sess.tokenHash[:])
	if err != nil {
		h.sessions.remove(rq.sid)
		return management.Principal{}, false
	}
	rq.acct, rq.p = acct, p
	return p, true
}
