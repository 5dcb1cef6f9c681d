package firewall

// Totals are the filter's counters that are not per remote address, for
// metrics. Stats has the per-remote ones.
type Totals struct {
	// Malformed packets were dropped as undecodable (they are also in
	// the zero Addr's dropped counts of Stats).
	Malformed uint64
	// Limited new flows were refused because conntrack was full (they are
	// also in their remote's dropped counts).
	Limited uint64
	// Flows are the conntrack entries now.
	Flows int64
}

// Totals returns the counters. Lock-free; safe at any time.
func (f *Filter) Totals() Totals {
	return Totals{Malformed: f.malformed.Load(), Limited: f.limited.Load(), Flows: f.ct.total.Load()}
}
