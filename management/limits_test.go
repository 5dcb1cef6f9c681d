package management

import (
	"fmt"
	"testing"

	"petrel/management/internal/mgmttest"
	"petrel/management/model"
)

// TestMapSizeLimit: a policy whose compiled maps would exceed MaxMapBytes is
// refused (KindInvalid, nothing stored) and the agents' streams keep
// receiving later updates.
func TestMapSizeLimit(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t), func(c *Config) { c.MaxMapBytes = 16 << 10 })
	ctx := mgmttest.Ctx(t)
	acct, ks, ids := meshAccount(t, s, 2)
	st := openStream(t, s, ks[0], nil)
	first := st.next(t)
	snap, _ := s.Snapshot(acct)
	all := allGroup(snap).ID
	var rules []model.PolicyRule
	for i := range 500 {
		rules = append(rules, model.PolicyRule{Sources: []string{all}, Destinations: []string{all}, Protocol: model.ProtoTCP,
			Ports: []model.PortRange{{Start: uint16(1000 + i), End: uint16(1000 + i)}}})
	}
	_, err := s.Put(ctx, acct, &model.Policy{Name: "big", Enabled: true, Rules: rules})
	wantKind(t, err, KindInvalid, "oversized map")
	if after, _ := s.Snapshot(acct); len(after.Policies) != len(snap.Policies) {
		t.Fatalf("refused policy was stored")
	}
	if _, err := s.Put(ctx, acct, &model.Peer{ID: ids[1], DNSLabel: "renamed"}); err != nil {
		t.Fatal(err)
	}
	if r := st.next(t); r.GetDelta() == nil || r.GetSerial() != first.GetSerial()+1 {
		t.Fatalf("after refusal: serial %d after %d, delta %v", r.GetSerial(), first.GetSerial(), r.GetDelta())
	}
}

func TestObjectLimits(t *testing.T) {
	s, _ := startService(t, sqliteBackend(t).Open(t))
	ctx := mgmttest.Ctx(t)
	acct := onlyAccount(t, s)
	snap, _ := s.Snapshot(acct)
	all := allGroup(snap).ID
	rule := model.PolicyRule{Sources: []string{all}, Destinations: []string{all}}
	many := make([]model.PolicyRule, MaxRulesPerPolicy+1)
	for i := range many {
		many[i] = rule
	}
	_, err := s.Put(ctx, acct, &model.Policy{Name: "p", Enabled: true, Rules: many})
	wantKind(t, err, KindInvalid, "too many rules")
	ports := make([]model.PortRange, MaxPortsPerRule+1)
	for i := range ports {
		ports[i] = model.PortRange{Start: uint16(i + 1), End: uint16(i + 1)}
	}
	r := rule
	r.Protocol, r.Ports = model.ProtoTCP, ports
	_, err = s.Put(ctx, acct, &model.Policy{Name: "p", Enabled: true, Rules: []model.PolicyRule{r}})
	wantKind(t, err, KindInvalid, "too many ports")

	// Account-wide rule count: MaxRulesPerAccount/MaxRulesPerPolicy full policies fit, one more rule does not.
	for i := range MaxRulesPerAccount / MaxRulesPerPolicy {
		if _, err := s.Put(ctx, acct, &model.Policy{Name: fmt.Sprint("p", i), Enabled: true, Rules: many[:MaxRulesPerPolicy]}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.Put(ctx, acct, &model.Policy{Name: "one more", Enabled: true, Rules: many[:1]})
	wantKind(t, err, KindInvalid, "too many rules in the account")
}
