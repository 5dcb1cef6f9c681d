package ui_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"petrel/management/model"
)

// sse reads server-sent events from the dashboard's stream.
type sse struct {
	t      *testing.T
	events chan [2]string // name, data
	cancel context.CancelFunc
}

func (b *browser) stream() *sse {
	b.e.t.Helper()
	return b.streamAt("/ui/events/stream")
}

// streamAt opens the event stream at path (with a page's query).
func (b *browser) streamAt(path string) *sse {
	b.e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", b.e.srv.URL+path, nil)
	c := *b.c
	c.Timeout = 0
	r, err := c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "text/event-stream" {
		b.e.t.Fatalf("stream: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	s := &sse{t: b.e.t, events: make(chan [2]string, 100), cancel: cancel}
	go func() {
		defer r.Body.Close()
		sc := bufio.NewScanner(r.Body)
		var name, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if name != "" {
					s.events <- [2]string{name, data}
				}
				name, data = "", ""
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
		close(s.events)
	}()
	b.e.t.Cleanup(cancel)
	return s
}

func (s *sse) next() (string, string) {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			return "", "(closed)"
		}
		return ev[0], ev[1]
	case <-time.After(30 * time.Second):
		s.t.Fatal("no event within 30 s")
	}
	return "", ""
}

// TestStream: a peer connecting and disconnecting reaches the stream as
// "peers" events naming it; a user hears only of their own peers; a
// revoked token ends the stream with "signout".
func TestStream(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", model.RoleUser)
	mine, myKey := e.userPeer(alice, "alice-laptop")
	gw, gwKey := e.addPeer(e.setupKey(), "gw")
	admin, user := e.browser(), e.browser()
	admin.signIn(e.admin)
	user.signIn(alice.pat)
	as, us := admin.stream(), user.stream()

	stop := e.connect(gwKey)
	if name, data := as.next(); name != "peers" || data != gw.ID {
		t.Fatalf("admin stream: %q %q, want peers %s", name, data, gw.ID)
	}
	stop()
	if name, data := as.next(); name != "peers" || data != gw.ID {
		t.Fatalf("admin stream after disconnect: %q %q", name, data)
	}
	e.connect(myKey)
	if name, data := as.next(); name != "peers" || data != mine.ID {
		t.Fatalf("admin stream: %q %q, want peers %s", name, data, mine.ID)
	}
	// The user's first event is their own peer: gw's were filtered out.
	if name, data := us.next(); name != "peers" || data != mine.ID {
		t.Fatalf("user stream: %q %q, want only their peer %s", name, data, mine.ID)
	}

	// Revoke alice's token; the next event ends her stream.
	for id, tok := range e.snapshot().AccessTokens {
		if tok.UserID == alice.id {
			if err := e.svc.RevokeAccessToken(e.ctx(), e.acct, alice.id, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.connect(gwKey)
	if name, _ := us.next(); name != "signout" {
		t.Fatalf("revoked user's stream: %q, want signout", name)
	}
	if name, data := us.next(); data != "(closed)" {
		t.Fatalf("stream still open after signout: %q %q", name, data)
	}
	if name, data := as.next(); name != "peers" || data != gw.ID {
		t.Fatalf("admin stream: %q %q", name, data)
	}
}
