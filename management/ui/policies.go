package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"petrel/management"
	"petrel/management/model"
)

type ruleRow struct {
	ID, Name       string
	Sources, Dests []string
	Protocol       string
	Ports          []string
	Bidirectional  bool
	Action         string
}

type policyRow struct {
	ID, Name, Description string
	Enabled               bool
	Rules                 []ruleRow
}

// simulation is the policy simulator's form and, once run, its verdict.
type simulation struct {
	Src, Dst, Proto, Port string
	Ran                   bool
	Verdict               management.PolicyVerdict
	SrcName, DstName      string
	Policy, Rule          string // names of the deciding policy and rule
}

type policiesData struct {
	Policies []policyRow
	Sim      simulation
	Protos   []option
}

func groupNames(a *model.Account, ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if g := a.Groups[id]; g != nil {
			out = append(out, display(g.Name))
		} else {
			out = append(out, id+" (deleted)")
		}
	}
	return out
}

func formatPorts(rs []model.PortRange) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		if r.Start == r.End || r.End == 0 {
			out = append(out, strconv.Itoa(int(r.Start)))
		} else {
			out = append(out, fmt.Sprintf("%d-%d", r.Start, r.End))
		}
	}
	return out
}

func (h *Handler) policyRows(a *model.Account) []policyRow {
	var out []policyRow
	for _, p := range a.Policies {
		row := policyRow{ID: p.ID, Name: display(p.Name), Description: display(p.Description), Enabled: p.Enabled}
		for _, r := range p.Rules {
			row.Rules = append(row.Rules, ruleRow{ID: r.ID, Name: display(r.Name), Sources: groupNames(a, r.Sources),
				Dests: groupNames(a, r.Destinations), Protocol: string(r.Protocol), Ports: formatPorts(r.Ports),
				Bidirectional: r.Bidirectional, Action: string(r.Action)})
		}
		out = append(out, row)
	}
	slices.SortFunc(out, func(a, b policyRow) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out
}

var protocols = []model.Protocol{model.ProtoAll, model.ProtoTCP, model.ProtoUDP, model.ProtoICMP}

// policies lists the policies and runs the simulator when the query asks
// (src and dst set): a GET, so the question is a shareable URL.
func (h *Handler) policies(rq *req) error {
	q := rq.r.URL.Query()
	d := h.policiesData(rq)
	if !q.Has("src") && !q.Has("dst") {
		h.render(rq, http.StatusOK, "policies", "Policies", d)
		return nil
	}
	if err := h.simulate(rq, &d.Sim); err != nil {
		status, fl := errFlash(err)
		h.render(rq, status, "policies", "Policies", d, fl)
		return nil
	}
	h.render(rq, http.StatusOK, "policies", "Policies", d)
	return nil
}

// policiesData is the policies page with the simulator's form as the
// query fills it (nothing run).
func (h *Handler) policiesData(rq *req) policiesData {
	q := rq.r.URL.Query()
	d := policiesData{Policies: h.policyRows(rq.acct),
		Sim: simulation{Src: q.Get("src"), Dst: q.Get("dst"), Proto: q.Get("proto"), Port: q.Get("port")}}
	if d.Sim.Proto == "" {
		d.Sim.Proto = string(model.ProtoTCP)
	}
	for _, p := range protocols {
		d.Protos = append(d.Protos, option{Value: string(p), Label: string(p), Selected: string(p) == d.Sim.Proto})
	}
	return d
}

// simulate asks the service's CheckPolicy about the form's question.
func (h *Handler) simulate(rq *req, sim *simulation) error {
	src, err := findPeer(rq.acct, sim.Src)
	if err != nil {
		return badInput("source: %s", err)
	}
	dst, err := findPeer(rq.acct, sim.Dst)
	if err != nil {
		return badInput("destination: %s", err)
	}
	proto := model.Protocol(sim.Proto)
	if !slices.Contains(protocols, proto) {
		return badInput("protocol %q: want all, tcp, udp or icmp", sim.Proto)
	}
	var port uint16
	if proto == model.ProtoTCP || proto == model.ProtoUDP {
		n, err := strconv.ParseUint(strings.TrimSpace(sim.Port), 10, 16)
		if err != nil || n == 0 {
			return badInput("port %q: want a number from 1 to 65535 for %s", sim.Port, proto)
		}
		port = uint16(n)
	} else if strings.TrimSpace(sim.Port) != "" {
		return badInput("a port is only meaningful with tcp or udp")
	}
	v, err := h.svc.CheckPolicy(rq.acct.ID, src.ID, dst.ID, proto, port)
	if err != nil {
		return err
	}
	sim.Ran, sim.Verdict = true, v
	sim.Verdict.Reason = display(v.Reason)
	sim.SrcName, sim.DstName = display(src.Name), display(dst.Name)
	if p := rq.acct.Policies[v.PolicyID]; p != nil {
		sim.Policy = display(p.Name)
		for _, r := range p.Rules {
			if r.ID == v.RuleID {
				sim.Rule = display(cmp.Or(r.Name, r.ID))
			}
		}
	}
	return nil
}

// findPeer resolves s as a peer ID, overlay IP, FQDN or DNS label, or a
// name that only one peer has.
func findPeer(a *model.Account, s string) (*model.Peer, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("give a peer name, IP, FQDN or ID")
	}
	if p := a.Peers[s]; p != nil {
		return p, nil
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		for _, p := range a.Peers {
			if p.IP == ip.Unmap() {
				return p, nil
			}
		}
		return nil, fmt.Errorf("no peer has IP %s", s)
	}
	label := strings.ToLower(strings.TrimSuffix(s, "."))
	label = strings.TrimSuffix(label, "."+strings.ToLower(domain(a)))
	var named []*model.Peer
	for _, p := range a.Peers {
		if p.DNSLabel != "" && p.DNSLabel == label {
			return p, nil
		}
		if strings.EqualFold(p.Name, s) {
			named = append(named, p)
		}
	}
	switch len(named) {
	case 1:
		return named[0], nil
	case 0:
		return nil, fmt.Errorf("unknown peer %q", display(s))
	}
	return nil, fmt.Errorf("%d peers are named %q; give an IP or FQDN", len(named), display(s))
}
