package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// policyFile is the declarative file of `policies apply`
// (docs/server-cli.md, docs/examples/policy.yaml). A section left out is
// not managed: its objects are neither compared nor pruned; an empty list
// manages "none". Objects are keyed by name (zones by domain, routes by
// network and routing peer), references are names.
type policyFile struct {
	Groups   *[]fileGroup  `yaml:"groups"`
	Policies *[]filePolicy `yaml:"policies"`
	Routes   *[]fileRoute  `yaml:"routes"`
	DNS      *fileDNS      `yaml:"dns"`
}

type fileGroup struct {
	Name string `yaml:"name"`
	// Peers left out: membership is not managed (peers that joined through
	// a setup key's auto groups stay); [] means no members.
	Peers *[]string `yaml:"peers"`
}

type filePolicy struct {
	Name        string     `yaml:"name"`
	Description string     `yaml:"description"`
	Enabled     *bool      `yaml:"enabled"`
	Rules       []fileRule `yaml:"rules"`
}

type fileRule struct {
	Name          string      `yaml:"name"`
	Sources       []string    `yaml:"sources"`
	Destinations  []string    `yaml:"destinations"`
	Protocol      string      `yaml:"protocol"`
	Ports         []portValue `yaml:"ports"`
	Bidirectional bool        `yaml:"bidirectional"`
	Action        string      `yaml:"action"`
}

// portValue is a port or range written as a number or a string.
type portValue string

func (p *portValue) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a port is a number or a string such as \"8000-8080\"", n.Line)
	}
	*p = portValue(n.Value)
	return nil
}

type fileRoute struct {
	Network     string   `yaml:"network"`
	Peer        string   `yaml:"peer"`
	PeerGroups  []string `yaml:"peer_groups"`
	Groups      []string `yaml:"groups"`
	NetworkID   string   `yaml:"network_id"`
	Description string   `yaml:"description"`
	Metric      int      `yaml:"metric"`
	Masquerade  bool     `yaml:"masquerade"`
	Enabled     *bool    `yaml:"enabled"`
	AutoApply   bool     `yaml:"auto_apply"`
}

type fileDNS struct {
	Settings    *fileSettings     `yaml:"settings"`
	Nameservers *[]fileNameserver `yaml:"nameservers"`
	Zones       *[]fileZone       `yaml:"zones"`
}

type fileSettings struct {
	DNSDomain string `yaml:"dns_domain"`
}

type fileNameserver struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Nameservers []string `yaml:"nameservers"`
	Domains     []string `yaml:"domains"`
	Primary     bool     `yaml:"primary"`
	Groups      []string `yaml:"groups"`
	Enabled     *bool    `yaml:"enabled"`
}

type fileZone struct {
	Domain  string       `yaml:"domain"`
	Records []recordJSON `yaml:"records"`
}

// maxPolicyFile bounds the file apply reads.
const maxPolicyFile = 16 << 20

// loadPolicyFile reads and decodes a policy file ("-" is stdin). Unknown
// keys, a section set to null and a second document are refused, with the
// line where the YAML decoder knows it.
func loadPolicyFile(path string, stdin io.Reader) (*policyFile, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, maxPolicyFile+1))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	if len(b) > maxPolicyFile {
		return nil, usageError{fmt.Errorf("%s: larger than %d bytes", path, maxPolicyFile)}
	}
	pf, err := parsePolicyFile(b)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	return pf, nil
}

func parsePolicyFile(b []byte) (*policyFile, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("the file is empty; want groups, policies, routes and/or dns")
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file holds no document; want groups, policies, routes and/or dns")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document; want one")
	}
	if err := checkSections(&doc); err != nil {
		return nil, err
	}
	var pf policyFile
	dec = yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&pf); err != nil {
		return nil, yamlProblems(err)
	}
	return &pf, nil
}

var (
	yamlUnknown  = regexp.MustCompile(`field (\S+) not found in type \S+`)
	yamlMismatch = regexp.MustCompile("cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)")
)

// yamlProblems rewords the YAML decoder's type errors for a reader of
// the file, one per line: `line 3: unknown key "colour"`, `line 7:
// "maybe" is not true or false`.
func yamlProblems(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var errs []error
	for _, e := range te.Errors {
		e = yamlUnknown.ReplaceAllString(e, `unknown key "$1"`)
		e = yamlMismatch.ReplaceAllStringFunc(e, func(m string) string {
			g := yamlMismatch.FindStringSubmatch(m)
			got := map[string]string{"!!seq": "a list", "!!map": "a mapping", "!!null": "null"}[g[1]]
			if got == "" {
				got = strconv.Quote(g[2])
			}
			want := "a mapping"
			switch t := strings.TrimPrefix(g[3], "*"); {
			case strings.HasPrefix(t, "[]"):
				want = "a list"
			case t == "string", t == "main.portValue":
				want = "a string"
			case t == "bool":
				want = "true or false"
			case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
				want = "a whole number"
			}
			return got + " is not " + want
		})
		errs = append(errs, errors.New(e))
	}
	return errors.Join(errs...)
}

// checkSections refuses a null section ("groups:" with nothing after it):
// leave the key out to leave those objects alone, or write [] for none.
func checkSections(doc *yaml.Node) error {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping with groups, policies, routes and/or dns", root.Line)
	}
	var check func(m *yaml.Node, prefix string) error
	check = func(m *yaml.Node, prefix string) error {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return fmt.Errorf("line %d: %s%s is null: leave the key out to leave these objects alone, or write [] for none", k.Line, prefix, k.Value)
			}
			if prefix == "" && k.Value == "dns" && v.Kind == yaml.MappingNode {
				if err := check(v, "dns."); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return check(root, "")
}

// --- normalizing the values the API normalizes, so that a re-apply
// compares equal to what the server stored ---

// canonicalPorts parses ports as the API does: "80", 80 or "8000-8080".
func canonicalPorts(ports []portValue) ([]string, error) {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(string(p)), "-")
		a, err := parsePortNumber(lo)
		if err != nil {
			return nil, fmt.Errorf("bad port %q: expected 1-65535 or a range such as 8000-8080", p)
		}
		if !isRange {
			out = append(out, strconv.Itoa(a))
			continue
		}
		b, err := parsePortNumber(hi)
		if err != nil || b < a {
			return nil, fmt.Errorf("bad port range %q", p)
		}
		if a == b {
			out = append(out, strconv.Itoa(a))
		} else {
			out = append(out, fmt.Sprintf("%d-%d", a, b))
		}
	}
	return out, nil
}

func parsePortNumber(s string) (int, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New("bad port")
	}
	return int(n), nil
}

// oneOf lowercases s and checks it against allowed; "" is def.
func oneOf(what, s, def string, allowed ...string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return def, nil
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", fmt.Errorf("bad %s %q: expected %s", what, s, strings.Join(allowed, ", "))
}

// canonicalNameserver is "ip:port" as the API prints it (port 53 when
// left out).
func canonicalNameserver(s string) (string, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 53).String(), nil
	}
	return "", fmt.Errorf("nameserver %q: expected an IP address, optionally with :port", s)
}

// canonicalDomain lowercases a domain and drops a trailing dot.
func canonicalDomain(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}

// canonicalRecord fills in what the API defaults: "@" for the apex, TTL
// 300, an upper-case type.
func canonicalRecord(r recordJSON) (recordJSON, error) {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		r.Name = "@"
	}
	r.Type = strings.ToUpper(strings.TrimSpace(r.Type))
	switch r.Type {
	case "A", "AAAA", "CNAME", "TXT":
	default:
		return r, fmt.Errorf("record %q: type %q not supported (A, AAAA, CNAME, TXT)", r.Name, r.Type)
	}
	if r.TTL == 0 {
		r.TTL = 300
	}
	return r, nil
}

// canonicalNetwork parses a route network; host bits are refused as the
// API refuses them.
func canonicalNetwork(s string) (string, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("network %q: expected a CIDR prefix such as 10.20.0.0/24 or 0.0.0.0/0", s)
	}
	if p.Masked() != p {
		return "", fmt.Errorf("network %s has host bits set; did you mean %s?", p, p.Masked())
	}
	return p.String(), nil
}
