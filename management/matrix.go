package management

// PairState is the connectivity of a pair of peers as the dashboard's
// matrix shows it.
type PairState string

// Pair states.
const (
	PairP2P        PairState = "p2p"
	PairRelayed    PairState = "relayed"
	PairDown       PairState = "down"
	PairConnecting PairState = "connecting"
	PairUnknown    PairState = "unknown"   // neither side reported the other yet
	PairNoPolicy   PairState = "no-policy" // the policy does not connect them
)

// MaxMatrixSide bounds the rows and the columns of one Connectivity call.
const MaxMatrixSide = 200

// Pair is the connectivity of a row peer A with a column peer B: A's view
// of B, B's view of A, and the state they combine to.
type Pair struct {
	State PairState
	// Reason: the relay reason when relayed; when down, why ("no sync
	// stream" when a side is disconnected from management, or the
	// agent's offline reason).
	Reason   string
	AtoB     PathView
	BtoA     PathView
	Expected bool // the network maps connect them
}

// Matrix is the connectivity of rows × cols.
type Matrix struct {
	Rows, Cols []string
	pairs      map[[2]string]Pair
}

// Pair returns the pair of row a and column b (zero if a == b or either
// is not in the account).
func (m Matrix) Pair(a, b string) Pair { return m.pairs[[2]string{a, b}] }

// Connectivity combines the path reports of the peers of rows × cols
// (peer IDs of accountID; unknown IDs are dropped, at most MaxMatrixSide
// each). A pair is no-policy when neither peer's network map holds the
// other; down when either side has no Sync stream or reports the other
// offline; relayed when either side relays (with that side's reason); p2p
// when either side is direct; else connecting, or unknown without
// reports. The caller decides which peers the viewer may see.
func (s *Service) Connectivity(accountID string, rows, cols []string) (Matrix, error) {
	if len(rows) > MaxMatrixSide || len(cols) > MaxMatrixSide {
		return Matrix{}, Errorf(KindInvalid, "connectivity: at most %d rows and %d columns", MaxMatrixSide, MaxMatrixSide)
	}
	st, err := s.account(accountID)
	if err != nil {
		return Matrix{}, err
	}
	v := st.view()
	known := func(ids []string) []string {
		out := make([]string, 0, len(ids))
		for _, id := range ids {
			if v.acct.Peers[id] != nil {
				out = append(out, id)
			}
		}
		return out
	}
	m := Matrix{Rows: known(rows), Cols: known(cols), pairs: map[[2]string]Pair{}}
	type side struct {
		connected bool
		views     map[string]PathView
	}
	sides := map[string]*side{}
	get := func(id string) *side {
		if sd := sides[id]; sd != nil {
			return sd
		}
		sd := &side{}
		sd.connected, _ = s.hub.status(id)
		sd.views = s.hub.watch.paths.views(id)
		sides[id] = sd
		return sd
	}
	for _, a := range m.Rows {
		for _, b := range m.Cols {
			if a == b {
				continue
			}
			sa, sb := get(a), get(b)
			// Only the page's pairs: no network map is built (see
			// netmap.Snapshot.Sees).
			p := Pair{AtoB: sa.views[b], BtoA: sb.views[a], Expected: v.snap.Sees(a, b) || v.snap.Sees(b, a)}
			p.State, p.Reason = combine(p, sa.connected, sb.connected)
			m.pairs[[2]string{a, b}] = p
		}
	}
	return m, nil
}

// combine decides a pair's state from both views.
func combine(p Pair, aUp, bUp bool) (PairState, string) {
	va, vb := p.AtoB, p.BtoA
	either := func(s PathState) (PathView, bool) {
		if va.State == s {
			return va, true
		}
		if vb.State == s {
			return vb, true
		}
		return PathView{}, false
	}
	switch {
	case !p.Expected:
		return PairNoPolicy, ""
	case !aUp || !bUp:
		return PairDown, "no sync stream"
	}
	if v, ok := either(PathOffline); ok {
		return PairDown, v.Reason
	}
	if v, ok := either(PathRelayed); ok {
		// Both relaying: the side that knows why (forced, symmetric NAT)
		// explains it better than the other's ICE outcome.
		if va.State == PathRelayed && vb.State == PathRelayed && iceOutcome(va.Reason) && !iceOutcome(vb.Reason) {
			v = vb
		}
		return PairRelayed, v.Reason
	}
	if _, ok := either(PathP2P); ok {
		return PairP2P, ""
	}
	if _, ok := either(PathConnecting); ok {
		return PairConnecting, ""
	}
	return PairUnknown, ""
}

// iceOutcome reports whether a relay reason only says how ICE ended on
// this side (the other side may know the cause).
func iceOutcome(reason string) bool {
	switch reason {
	case "", "ice-pending", "ice-timeout", "ice-failed", "direct-path-lost":
		return true
	}
	return false
}
