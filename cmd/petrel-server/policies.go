package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// policyJSON is the REST shape of a policy (the fields the table shows).
type policyJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Enabled     bool       `json:"enabled"`
	Rules       []ruleJSON `json:"rules"`
}

type ruleJSON struct {
	Name          string     `json:"name"`
	Sources       []nameJSON `json:"sources"`
	Destinations  []nameJSON `json:"destinations"`
	Protocol      string     `json:"protocol"`
	Ports         []string   `json:"ports"`
	Bidirectional bool       `json:"bidirectional"`
	Action        string     `json:"action"`
}

// summary is a rule in one line: "users -> servers tcp/80,443 accept".
func (r ruleJSON) summary() string {
	arrow := "->"
	if r.Bidirectional {
		arrow = "<->"
	}
	proto := r.Protocol
	if len(r.Ports) > 0 {
		proto += "/" + strings.Join(r.Ports, ",")
	}
	return fmt.Sprintf("%s %s %s %s %s", joinNames(r.Sources), arrow, joinNames(r.Destinations), proto, r.Action)
}

var policiesDef = &resourceDef{
	use: "policies", aliases: []string{"policy"}, short: "Manage access policies; check and apply them",
	what: "policy", plural: "policies", path: "/api/policies", nameField: "name",
	table: tableOf([]string{"NAME", "ENABLED", "RULES", "FIRST RULE", "ID"}, func(p policyJSON) []string {
		first := ""
		if len(p.Rules) > 0 {
			first = clip(p.Rules[0].summary(), 70)
		}
		return []string{p.Name, yesNo(p.Enabled), fmt.Sprint(len(p.Rules)), first, p.ID}
	}),
	create: func() *editor { return policyEditor(true) },
	update: func() *editor { return policyEditor(false) },
}

func newPoliciesCmd() *cobra.Command {
	cmd := newResourceCmd(policiesDef)
	cmd.AddCommand(newPolicyCheckCmd(), newApplyCmd())
	return cmd
}

// ruleFlags are the flags of a policy's single rule.
var ruleFlags = []string{"rule-name", "src", "dst", "proto", "port", "bidirectional", "action"}

func policyEditor(create bool) *editor {
	var name, description, ruleName, proto, action string
	var enabled, bidirectional bool
	var src, dst, ports []string
	return &editor{
		required: []string{"name", "src", "dst"},
		register: func(fs *pflag.FlagSet) {
			fs.StringVar(&name, "name", "", "policy name")
			fs.StringVar(&description, "description", "", "description")
			fs.BoolVar(&enabled, "enabled", true, "enforce the policy (--enabled=false keeps it but ignores it)")
			fs.StringVar(&ruleName, "rule-name", "", "name of the rule")
			fs.StringArrayVar(&src, "src", nil, "source group, id or name (repeatable)")
			fs.StringArrayVar(&dst, "dst", nil, "destination group, id or name (repeatable)")
			fs.StringVar(&proto, "proto", "all", "protocol: all, tcp, udp or icmp")
			fs.StringArrayVar(&ports, "port", nil, `port or range such as 443 or "8000-8080", with tcp or udp (repeatable)`)
			fs.BoolVar(&bidirectional, "bidirectional", false, "the destinations may also open connections to the sources")
			fs.StringVar(&action, "action", "accept", "accept or drop")
		},
		body: func(_ context.Context, _ *adminClient, fs *pflag.FlagSet, cur *object) (map[string]any, error) {
			m := members{}
			m.set(fs, "name", "name", name)
			m.set(fs, "description", "description", description)
			m.set(fs, "enabled", "enabled", enabled)
			given := false
			for _, f := range ruleFlags {
				given = given || fs.Changed(f)
			}
			if !given {
				return m, nil
			}
			rule := map[string]any{}
			if cur != nil {
				rules, _ := cur.fields["rules"].([]any)
				if len(rules) != 1 {
					return nil, usageError{fmt.Errorf("the rule flags edit a policy's only rule; this one has %d rules: use -f FILE", len(rules))}
				}
				rule = ruleRequest(rules[0])
			}
			r := members(rule)
			r.set(fs, "rule-name", "name", ruleName)
			for _, l := range []struct {
				flag, key string
				vs        []string
			}{{"src", "sources", src}, {"dst", "destinations", dst}, {"port", "ports", ports}} {
				if err := r.list(fs, l.flag, l.key, l.vs); err != nil {
					return nil, err
				}
			}
			r.set(fs, "proto", "protocol", proto)
			r.set(fs, "bidirectional", "bidirectional", bidirectional)
			r.set(fs, "action", "action", action)
			m["rules"] = []any{rule}
			return m, nil
		},
	}
}

// ruleRequest turns a rule of a GET answer into request form: references
// become their IDs.
func ruleRequest(v any) map[string]any {
	in, _ := v.(map[string]any)
	out := map[string]any{}
	for k, val := range in {
		switch k {
		case "sources", "destinations":
			o := object{fields: in}
			out[k] = refIDs(&o, k)
		default:
			out[k] = val
		}
	}
	return out
}

// checkJSON is the answer of GET /api/policies/check.
type checkJSON struct {
	Allowed  bool     `json:"allowed"`
	PolicyID string   `json:"policy_id"`
	RuleID   string   `json:"rule_id"`
	Reason   string   `json:"reason"`
	Src      nameJSON `json:"src"`
	Dst      nameJSON `json:"dst"`
	Protocol string   `json:"protocol"`
	Port     int      `json:"port"`
}

func newPolicyCheckCmd() *cobra.Command {
	var f clientFlags
	var src, dst, proto string
	var port int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check --src PEER --dst PEER [--proto all|tcp|udp|icmp] [--port N] [--json]",
		Short: "Tell whether the policies let one peer reach another",
		Long: `Check asks the server whether the policies let --src open a connection to
--dst (peers by id, name, fqdn or overlay IP) over --proto and --port
(required for tcp and udp). It prints the verdict and the deciding policy;
the exit status is 0 for either verdict.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var problems []error
			if src == "" {
				problems = append(problems, errors.New("--src is required"))
			}
			if dst == "" {
				problems = append(problems, errors.New("--dst is required"))
			}
			if port < 0 || port > 65535 {
				problems = append(problems, fmt.Errorf("--port %d: want 1-65535", port))
			}
			if err := errors.Join(problems...); err != nil {
				return usageError{err}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			q := url.Values{"src": {src}, "dst": {dst}}
			if proto != "" {
				q.Set("proto", proto)
			}
			if port != 0 {
				q.Set("port", fmt.Sprint(port))
			}
			raw, err := c.send(cmd.Context(), "GET", "/api/policies/check?"+q.Encode(), nil, "")
			if err != nil {
				return fmt.Errorf("check policy: %w", err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			var v checkJSON
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("check policy: decode response: %w", err)
			}
			return printVerdict(cmd, c, v)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&src, "src", "", "source peer: id, name, fqdn or overlay IP (required)")
	fl.StringVar(&dst, "dst", "", "destination peer (required)")
	fl.StringVar(&proto, "proto", "all", "all, tcp, udp or icmp")
	fl.IntVar(&port, "port", 0, "destination port (tcp and udp)")
	fl.BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

// printVerdict prints a check answer, naming the deciding policy.
func printVerdict(cmd *cobra.Command, c *adminClient, v checkJSON) error {
	what := v.Protocol
	if v.Port != 0 {
		what += fmt.Sprintf("/%d", v.Port)
	}
	verdict := "denied"
	if v.Allowed {
		verdict = "allowed"
	}
	line := fmt.Sprintf("%s: %s -> %s %s", verdict, v.Src.Name, v.Dst.Name, what)
	if v.PolicyID != "" {
		name := v.PolicyID
		var p policyJSON
		if err := c.getJSON(cmd.Context(), "/api/policies/"+url.PathEscape(v.PolicyID), &p); err == nil {
			name = p.Name
		}
		line += fmt.Sprintf(" by policy %s (rule %s)", name, v.RuleID)
	}
	if v.Reason != "" {
		line += " — " + v.Reason
	}
	_, err := fmt.Fprintln(cmd.OutOrStdout(), escapeCells(line))
	return err
}
