package restapi

import (
	"net/http"
	"net/url"
	"strings"

	"petrel/management/model"
)

// policyRequest is the body of POST /api/policies and PUT /api/policies/{id}.
type policyRequest struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Enabled     *bool         `json:"enabled"` // default true
	Rules       []ruleRequest `json:"rules"`
}

type ruleRequest struct {
	ID            string     `json:"id"` // keep an existing rule's ID on update; empty: assigned
	Name          string     `json:"name"`
	Sources       []ref      `json:"sources"`
	Destinations  []ref      `json:"destinations"`
	Protocol      string     `json:"protocol"` // default all
	Ports         []portSpec `json:"ports"`
	Bidirectional bool       `json:"bidirectional"`
	Action        string     `json:"action"` // default accept
}

// decodePolicy decodes a policy body and resolves its group references.
func decodePolicy(r resolver, body []byte) (*model.Policy, error) {
	var req policyRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	p := &model.Policy{Name: strings.TrimSpace(req.Name), Description: req.Description, Enabled: boolOr(req.Enabled, true)}
	if p.Name == "" {
		return nil, invalidf("name is required")
	}
	if len(req.Rules) == 0 {
		return nil, invalidf("rules: at least one rule is required")
	}
	for i, rr := range req.Rules {
		proto, err := parseProtocol(rr.Protocol)
		if err != nil {
			return nil, invalidf("rules[%d]: %s", i, err.Error())
		}
		action, err := parseAction(rr.Action)
		if err != nil {
			return nil, invalidf("rules[%d]: %s", i, err.Error())
		}
		if len(rr.Sources) == 0 || len(rr.Destinations) == 0 {
			return nil, invalidf("rules[%d]: sources and destinations each need at least one group", i)
		}
		if len(rr.Ports) > 0 && proto != model.ProtoTCP && proto != model.ProtoUDP {
			return nil, invalidf("rules[%d]: ports need protocol tcp or udp, not %s", i, proto)
		}
		src, err := r.groupRefs("rules["+itoa(i)+"].sources", rr.Sources)
		if err != nil {
			return nil, err
		}
		dst, err := r.groupRefs("rules["+itoa(i)+"].destinations", rr.Destinations)
		if err != nil {
			return nil, err
		}
		ports := make([]model.PortRange, 0, len(rr.Ports))
		for _, ps := range rr.Ports {
			ports = append(ports, model.PortRange(ps))
		}
		p.Rules = append(p.Rules, model.PolicyRule{
			ID: strings.TrimSpace(rr.ID), Name: strings.TrimSpace(rr.Name), Sources: src, Destinations: dst,
			Protocol: proto, Ports: ports, Bidirectional: rr.Bidirectional, Action: action,
		})
	}
	return p, nil
}

// policyResource serves /api/policies.
var policyResource = &resource[*model.Policy, policyView]{
	all:      func(a *model.Account) map[string]*model.Policy { return a.Policies },
	what:     "policy",
	decode:   decodePolicy,
	setID:    func(p *model.Policy, id string) { p.ID = id },
	readOnly: readOnly{fixed: []string{"id"}},
	viewer:   func(_ *server, r resolver) func(*model.Policy) policyView { return r.policyView },
	name:     func(v policyView) string { return v.Name },
	id:       func(v policyView) string { return v.ID },
}

// checkQuery is a decoded GET /api/policies/check query.
type checkQuery struct {
	src, dst *model.Peer
	proto    model.Protocol
	port     uint16
}

// decodeCheckQuery parses src, dst (peer id, name, fqdn or IP), proto
// (default all) and port (needed for tcp and udp) from a raw query string.
func decodeCheckQuery(r resolver, rawQuery string) (checkQuery, error) {
	var q checkQuery
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return q, invalidf("bad query string: %v", err)
	}
	for k, v := range vals {
		switch k {
		case "src", "dst", "proto", "port":
			if len(v) > 1 {
				return q, invalidf("query parameter %q given %d times", k, len(v))
			}
		default:
			return q, invalidf("unknown query parameter %q (expected src, dst, proto, port)", k)
		}
	}
	for _, side := range []struct {
		name string
		dst  **model.Peer
	}{{"src", &q.src}, {"dst", &q.dst}} {
		v := vals.Get(side.name)
		if v == "" {
			return q, invalidf("query parameter %q is required (peer id, name, fqdn or overlay IP)", side.name)
		}
		p, rerr := r.peer(v)
		if rerr != nil {
			return q, invalidf("%s: %s", side.name, rerr.msg)
		}
		*side.dst = p
	}
	if q.proto, err = parseProtocol(vals.Get("proto")); err != nil {
		return q, err
	}
	if v := vals.Get("port"); v != "" {
		if q.port, err = parsePort(v); err != nil {
			return q, err
		}
	}
	if q.port == 0 && (q.proto == model.ProtoTCP || q.proto == model.ProtoUDP) {
		return q, invalidf("port is required for proto %s", q.proto)
	}
	if q.port != 0 && q.proto != model.ProtoTCP && q.proto != model.ProtoUDP {
		return q, invalidf("port is only meaningful with proto tcp or udp")
	}
	return q, nil
}

func (s *server) checkPolicy(c *call) (int, any, error) {
	r, err := s.resolver(c)
	if err != nil {
		return 0, nil, err
	}
	q, err := decodeCheckQuery(r, c.r.URL.RawQuery)
	if err != nil {
		return 0, nil, err
	}
	v, err := s.api.CheckPolicy(c.account, q.src.ID, q.dst.ID, q.proto, q.port)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, checkView{
		Allowed: v.Allowed, PolicyID: v.PolicyID, RuleID: v.RuleID, Reason: v.Reason,
		Src: refView{ID: q.src.ID, Name: q.src.Name}, Dst: refView{ID: q.dst.ID, Name: q.dst.Name},
		Protocol: string(q.proto), Port: q.port,
	}, nil
}
