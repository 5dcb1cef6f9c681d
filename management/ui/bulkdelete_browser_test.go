package ui_test

// Browser test of bulk delete on the peers page (the harness is in
// browser_test.go).

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"petrel/internal/keys"
	"petrel/proto/managementpb"
)

// openStream opens the peer's Sync stream, as a connected agent holds it,
// and returns a channel that receives Sync's result when the server ends
// the stream. The stream is cancelled at the end of the test.
func openStream(e *env, k keys.Private) <-chan error {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	first := make(chan struct{}, 1)
	go func() {
		ended <- e.svc.Sync(ctx, k.Public(), &managementpb.SyncRequest{}, func(*managementpb.SyncResponse) error {
			select {
			case first <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		e.t.Fatal("sync did not start")
	}
	e.t.Cleanup(cancel)
	return ended
}

// rowNames lists the names in the peers table, in order.
func (tb *tab) rowNames() []string {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#peer-rows .peer-name')].map(a => a.textContent)`))
	if err != nil {
		tb.t.Fatalf("row names: %v", err)
	}
	return v
}

// TestBulkDeletePeers deletes peers from the peers page in Chromium:
// filter by name, tick two rows and delete them, then delete all that
// still match the filter; each time the confirmation page lists exactly
// those peers and deletes nothing, and after confirming their rows are
// gone, the service no longer has them and the rest remain. A deleted
// peer that was connected has its Sync stream ended, and a second tab
// left on the unfiltered page loses the deleted rows without a reload; a
// connected peer that was not deleted keeps its stream. No script error,
// dialog or CSP violation on the way.
func TestBulkDeletePeers(t *testing.T) {
	chromium(t)
	e := newEnv(t)
	key := e.setupKey()
	ids := map[string]string{} // name → peer ID
	privs := map[string]keys.Private{}
	for _, name := range []string{"keep-a", "keep-b", "keep-c", "bulk-0", "bulk-1", "bulk-2", "bulk-3", "bulk-4", "bulk-5"} {
		p, k := e.addPeer(key, name)
		ids[name], privs[name] = p.ID, k
	}
	doomed := openStream(e, privs["bulk-2"])
	kept := openStream(e, privs["keep-b"])

	// A second tab left on the unfiltered page: the deletions reach it
	// over the event stream (bulk-2 was connected), without a reload.
	watcher := newTab(t, e.srv.URL)
	watcher.signIn(e.admin)
	watcher.until("all rows and the event stream", `document.querySelectorAll('#peer-rows .peer-name').length === 9`)
	watcher.eval(setMarker)

	tb := newTab(t, e.srv.URL)
	tb.signIn(e.admin)
	if n := len(tb.rowNames()); n != 9 {
		t.Fatalf("peers page shows %d rows, want 9", n)
	}

	// Filter by name in the form.
	filter := func() {
		t.Helper()
		tb.do("filter", chromedp.SendKeys("#q", "bulk-"), chromedp.Click("#filter"), chromedp.WaitReady("#peer-rows"))
		tb.until("the filtered page", `location.search.includes('q=bulk-')`)
	}
	filter()
	if got := strings.Join(tb.rowNames(), " "); got != "bulk-0 bulk-1 bulk-2 bulk-3 bulk-4 bulk-5" {
		t.Fatalf("filtered rows %q", got)
	}

	// Tick two rows, delete selected: the confirmation names just those.
	tb.do("select two", chromedp.Click("#sel-"+ids["bulk-0"]), chromedp.Click("#sel-"+ids["bulk-1"]),
		chromedp.Click("#delete-selected"), chromedp.WaitVisible("#confirm-delete"))
	if l := tb.text("#confirm-list"); !strings.Contains(l, "bulk-0") || !strings.Contains(l, "bulk-1") ||
		strings.Count(l, "bulk-") != 2 || strings.Contains(l, "keep-") {
		t.Fatalf("confirmation lists %q, want bulk-0 and bulk-1", l)
	}
	if n := len(e.snapshot().Peers); n != 9 {
		t.Fatalf("the confirmation page deleted peers: %d left", n)
	}
	tb.do("confirm", chromedp.Click("#confirm-delete"), chromedp.WaitVisible(".flash"))
	if f := tb.text(".flash"); !strings.Contains(f, "Deleted 2 peer(s).") || !tb.eval(`document.querySelector('.flash.error') === null`) {
		t.Fatalf("flash %q", f)
	}
	if got := strings.Join(tb.rowNames(), " "); got != "bulk-2 bulk-3 bulk-4 bulk-5 keep-a keep-b keep-c" {
		t.Fatalf("rows after deleting two: %q", got)
	}
	wantPeers(t, e, "bulk-2 bulk-3 bulk-4 bulk-5 keep-a keep-b keep-c")

	// Filter again and delete everything matching: the four bulk- left.
	filter()
	tb.do("delete matching", chromedp.Click("#delete-matching"), chromedp.WaitVisible("#confirm-delete"))
	if h := tb.text("h1"); !strings.Contains(h, "Delete 4 peer(s)?") {
		t.Fatalf("confirmation heading %q", h)
	}
	if l := tb.text("#confirm-list"); strings.Count(l, "bulk-") != 4 || strings.Contains(l, "keep-") {
		t.Fatalf("confirmation lists %q, want bulk-2 to bulk-5", l)
	}
	if n := len(e.snapshot().Peers); n != 7 {
		t.Fatalf("the confirmation page deleted peers: %d left", n)
	}
	tb.do("confirm", chromedp.Click("#confirm-delete"), chromedp.WaitVisible(".flash"))
	if f := tb.text(".flash"); !strings.Contains(f, "Deleted 4 peer(s).") || !tb.eval(`document.querySelector('.flash.error') === null`) {
		t.Fatalf("flash %q", f)
	}
	if got := strings.Join(tb.rowNames(), " "); got != "keep-a keep-b keep-c" {
		t.Fatalf("rows after deleting the matching: %q", got)
	}
	wantPeers(t, e, "keep-a keep-b keep-c")

	// The deleted connected peer's stream ended; the kept one's did not.
	select {
	case err := <-doomed:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("bulk-2's stream ended with %v, want the server's refusal", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the deleted peer's Sync stream is still open")
	}
	if c, _ := e.svc.PeerStatus(e.acct, ids["bulk-2"]); c {
		t.Fatal("the deleted peer still shows as connected")
	}
	select {
	case err := <-kept:
		t.Fatalf("keep-b's stream ended: %v", err)
	default:
	}
	if c, _ := e.svc.PeerStatus(e.acct, ids["keep-b"]); !c {
		t.Fatal("keep-b no longer shows as connected")
	}

	watcher.until("the deleted rows to leave the second tab", `[...document.querySelectorAll('#peer-rows .peer-name')].map(a => a.textContent).join(' ') === 'keep-a keep-b keep-c'`)
	if !watcher.eval(hasMarker) {
		t.Fatal("the second tab reloaded")
	}
	tb.clean("bulk delete")
	watcher.clean("second tab")
}

// wantPeers checks the service holds exactly the peers named (sorted,
// space-separated).
func wantPeers(t *testing.T, e *env, names string) {
	t.Helper()
	var got []string
	for _, p := range e.snapshot().Peers {
		got = append(got, p.Name)
	}
	if g := strings.Join(slices.Sorted(slices.Values(got)), " "); g != names {
		t.Fatalf("service has peers %q, want %q", g, names)
	}
}
