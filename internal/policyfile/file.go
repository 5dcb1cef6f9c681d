package policyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// File is a decoded policy file. A section left out (nil) is not managed:
// its objects are neither compared nor pruned; an empty list manages
// "none". Objects are keyed by name (zones by domain, routes by network
// and routing peer), references are names.
type File struct {
	Groups   *[]Group  `yaml:"groups" json:"groups,omitempty"`
	Policies *[]Policy `yaml:"policies" json:"policies,omitempty"`
	Routes   *[]Route  `yaml:"routes" json:"routes,omitempty"`
	DNS      *DNS      `yaml:"dns" json:"dns,omitempty"`
}

// Group is a group of the file.
type Group struct {
	Name string `yaml:"name" json:"name"`
	// Peers left out: membership is not managed (peers that joined through
	// a setup key's auto groups stay); [] means no members.
	Peers *[]string `yaml:"peers,omitempty" json:"peers,omitempty"`
}

// Policy is a policy of the file; Enabled left out means true.
type Policy struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	Enabled     *bool  `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	Rules       []Rule `yaml:"rules" json:"rules"`
}

// Rule is a rule of a policy.
type Rule struct {
	Name          string   `yaml:"name,omitempty" json:"name,omitempty"`
	Sources       []string `yaml:"sources" json:"sources"`
	Destinations  []string `yaml:"destinations" json:"destinations"`
	Protocol      string   `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	Ports         []Port   `yaml:"ports,omitempty" json:"ports,omitempty"`
	Bidirectional bool     `yaml:"bidirectional,omitempty" json:"bidirectional,omitempty"`
	Action        string   `yaml:"action,omitempty" json:"action,omitempty"`
}

// Port is a port or range, written as a number or a string ("8000-8080").
type Port string

// UnmarshalYAML accepts a scalar only.
func (p *Port) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a port is a number or a string such as \"8000-8080\"", n.Line)
	}
	*p = Port(n.Value)
	return nil
}

// Route is a route of the file: exactly one of Peer and PeerGroups.
type Route struct {
	Network     string   `yaml:"network" json:"network"`
	Peer        string   `yaml:"peer,omitempty" json:"peer,omitempty"`
	PeerGroups  []string `yaml:"peer_groups,omitempty" json:"peer_groups,omitempty"`
	Groups      []string `yaml:"groups" json:"groups"`
	NetworkID   string   `yaml:"network_id,omitempty" json:"network_id,omitempty"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Metric      int      `yaml:"metric,omitempty" json:"metric,omitempty"`
	Masquerade  bool     `yaml:"masquerade,omitempty" json:"masquerade,omitempty"`
	Enabled     *bool    `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	AutoApply   bool     `yaml:"auto_apply,omitempty" json:"auto_apply,omitempty"`
}

// DNS is the dns section; each of its parts is managed only when present.
type DNS struct {
	Settings    *Settings     `yaml:"settings" json:"settings,omitempty"`
	Nameservers *[]Nameserver `yaml:"nameservers" json:"nameservers,omitempty"`
	Zones       *[]Zone       `yaml:"zones" json:"zones,omitempty"`
}

// Settings are the account's DNS settings.
type Settings struct {
	DNSDomain string `yaml:"dns_domain" json:"dns_domain"`
}

// Nameserver is a nameserver group.
type Nameserver struct {
	Name        string   `yaml:"name" json:"name"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Nameservers []string `yaml:"nameservers" json:"nameservers"`
	Domains     []string `yaml:"domains,omitempty" json:"domains,omitempty"`
	Primary     bool     `yaml:"primary,omitempty" json:"primary,omitempty"`
	Groups      []string `yaml:"groups" json:"groups"`
	Enabled     *bool    `yaml:"enabled,omitempty" json:"enabled,omitempty"`
}

// Zone is a custom DNS zone.
type Zone struct {
	Domain  string   `yaml:"domain" json:"domain"`
	Records []Record `yaml:"records" json:"records"`
}

// Record is a zone record, in the API and in policy files.
type Record struct {
	Name  string `json:"name" yaml:"name"`
	Type  string `json:"type" yaml:"type"`
	Value string `json:"value" yaml:"value"`
	TTL   uint32 `json:"ttl" yaml:"ttl"`
}

// MaxSize bounds the policy file a caller should read.
const MaxSize = 16 << 20

// Problems are the problems of a file, each naming its place; Error joins
// them one per line. Nothing may be changed when there are any.
type Problems []error

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, e := range ps {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (ps Problems) Unwrap() []error { return ps }

// Parse decodes a policy file (YAML, or JSON, which is YAML). Unknown
// keys, a section set to null and a second document are refused, with the
// line where the YAML decoder knows it. The error is Problems.
func Parse(b []byte) (*File, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, Problems{errors.New("the file is empty; want groups, policies, routes and/or dns")}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Problems{errors.New("the file holds no document; want groups, policies, routes and/or dns")}
		}
		return nil, Problems{err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, Problems{errors.New("more than one YAML document; want one")}
	}
	if err := checkSections(&doc); err != nil {
		return nil, Problems{err}
	}
	var f File
	dec = yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, yamlProblems(err)
	}
	return &f, nil
}

var (
	yamlUnknown  = regexp.MustCompile(`field (\S+) not found in type \S+`)
	yamlMismatch = regexp.MustCompile("cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)")
)

// yamlProblems rewords the YAML decoder's type errors for a reader of
// the file, one per line: `line 3: unknown key "colour"`, `line 7:
// "maybe" is not true or false`.
func yamlProblems(err error) Problems {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Problems{err}
	}
	var errs Problems
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
			case t == "string", t == "policyfile.Port":
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
	return errs
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
