package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"petrel/management"
)

// The peer page's connections: every peer this one's network map connects
// it to, with the pair's state (as the matrix combines it) and both
// agents' views — path, relay or offline reason, latency, how old the
// report is.

// pathSide is one agent's view of the other.
type pathSide struct {
	State, Reason, Latency string
	Age                    string // since the report arrived; "" without one
	Local, Remote          string // the direct path's ICE candidates
	Handshake              string // since the last WireGuard handshake; "" without one
}

type connRow struct {
	ID, Name, IP string
	State, Text  string // the pair's state and its text (with the reason)
	Out, In      pathSide
}

func sideOf(now time.Time, v management.PathView) pathSide {
	s := pathSide{State: string(v.State), Reason: display(v.Reason)}
	if s.State == "" {
		s.State = "no report"
	}
	if v.Latency > 0 {
		s.Latency = fmt.Sprintf("%.2f ms", float64(v.Latency.Microseconds())/1000)
	}
	if !v.At.IsZero() {
		s.Age = fmtAge(now.Sub(v.At))
	}
	s.Local, s.Remote = display(v.Local), display(v.Remote)
	if !v.Handshake.IsZero() {
		s.Handshake = fmtAge(now.Sub(v.Handshake))
	}
	return s
}

// fmtAge says how long ago something was, coarsely.
func fmtAge(ago time.Duration) string {
	d := int64(ago / time.Second)
	switch {
	case d < 2:
		return "just now"
	case d < 120:
		return fmt.Sprintf("%d s ago", d)
	case d < 7200:
		return fmt.Sprintf("%d min ago", d/60)
	}
	return fmt.Sprintf("%d h ago", d/3600)
}

// connections lists p's pairs with every peer the viewer may see that the
// policy connects it to, down and relayed first.
func (h *Handler) connections(rq *req, id string) ([]connRow, error) {
	visible := visiblePeers(rq)
	others := make([]string, 0, len(visible))
	for oid := range visible {
		if oid != id {
			others = append(others, oid)
		}
	}
	slices.Sort(others)
	now := h.now()
	var out []connRow
	for start := 0; start < len(others); start += management.MaxMatrixSide {
		cols := others[start:min(len(others), start+management.MaxMatrixSide)]
		m, err := h.svc.Connectivity(rq.acct.ID, []string{id}, cols)
		if err != nil {
			return nil, err
		}
		for _, oid := range cols {
			pr := m.Pair(id, oid)
			if pr.State == "" || pr.State == management.PairNoPolicy {
				continue
			}
			o := visible[oid]
			row := connRow{ID: oid, Name: display(o.Name), State: string(pr.State), Text: string(pr.State),
				Out: sideOf(now, pr.AtoB), In: sideOf(now, pr.BtoA)}
			if o.IP.IsValid() {
				row.IP = o.IP.String()
			}
			if pr.Reason != "" && (pr.State == management.PairRelayed || pr.State == management.PairDown) {
				row.Text += " (" + display(pr.Reason) + ")"
			}
			out = append(out, row)
		}
	}
	rank := map[string]int{string(management.PairDown): 0, string(management.PairRelayed): 1,
		string(management.PairConnecting): 2, string(management.PairUnknown): 3, string(management.PairP2P): 4}
	slices.SortFunc(out, func(a, b connRow) int {
		return cmp.Or(cmp.Compare(rank[a.State], rank[b.State]), cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)),
			cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}
