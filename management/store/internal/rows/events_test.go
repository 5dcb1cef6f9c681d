package rows

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"petrel/management/model"
)

// TestEventsQueryParameters: every filter value travels as a parameter,
// numbered in order, never in the SQL text.
func TestEventsQueryParameters(t *testing.T) {
	ph := func(n int) string { return "$" + strconv.Itoa(n) }
	evil := "x' OR '1'='1"
	f := model.EventFilter{Before: 99, Actor: evil, Action: evil + ".", TargetKind: model.Kind(evil), TargetID: evil,
		Since: time.Unix(5, 0), Until: time.Unix(6, 0), Limit: 10}
	q, args := EventsQuery(ph, evil, f)
	if strings.Contains(q, "'") {
		t.Fatalf("a filter value is in the query text: %s", q)
	}
	if n := strings.Count(q, "$"); n != len(args) || !strings.Contains(q, "$"+strconv.Itoa(len(args))) {
		t.Fatalf("%d placeholders for %d args in %s", n, len(args), q)
	}
	if want := []any{evil, int64(99), evil, int64(len([]rune(evil + "."))), evil + ".", evil, evil,
		int64(5e9), int64(6e9), int64(10)}; len(args) != len(want) {
		t.Fatalf("args %v, want %v", args, want)
	} else {
		for i := range want {
			if args[i] != want[i] {
				t.Errorf("arg %d = %#v, want %#v", i+1, args[i], want[i])
			}
		}
	}
	if q, args := EventsQuery(ph, "a", model.EventFilter{}); len(args) != 1 || strings.Contains(q, "LIMIT") {
		t.Fatalf("empty filter: %s %v", q, args)
	}
}
