package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newDNSCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dns", Short: "Manage DNS: nameserver groups, custom zones and settings"}
	cmd.AddCommand(newResourceCmd(nameserversDef), newResourceCmd(zonesDef), newDNSSettingsCmd())
	return cmd
}

// nameserverGroupJSON is the REST shape of a nameserver group.
type nameserverGroupJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Nameservers []string   `json:"nameservers"`
	Domains     []string   `json:"domains"`
	Primary     bool       `json:"primary"`
	Groups      []nameJSON `json:"groups"`
	Enabled     bool       `json:"enabled"`
}

var nameserversDef = &resourceDef{
	use: "nameservers", aliases: []string{"nameserver", "ns"}, short: "Manage nameserver groups (upstream resolvers for peers)",
	what: "nameserver group", plural: "nameserver groups", path: "/api/dns/nameservers", nameField: "name",
	table: tableOf([]string{"NAME", "NAMESERVERS", "DOMAINS", "PRIMARY", "GROUPS", "ENABLED", "ID"}, func(n nameserverGroupJSON) []string {
		return []string{n.Name, strings.Join(n.Nameservers, ","), strings.Join(n.Domains, ","), yesNo(n.Primary),
			joinNames(n.Groups), yesNo(n.Enabled), n.ID}
	}),
	create: nameserverEditor,
	update: nameserverEditor,
}

func nameserverEditor() *editor {
	var name, description string
	var nameservers, domains, groups []string
	var primary, enabled bool
	return &editor{
		required: []string{"name", "nameserver", "group"},
		register: func(fs *pflag.FlagSet) {
			fs.StringVar(&name, "name", "", "name of the nameserver group")
			fs.StringVar(&description, "description", "", "description")
			fs.StringArrayVar(&nameservers, "nameserver", nil, `nameserver IP, optionally with port: 10.0.0.53, "[2001:db8::53]:5353" (repeatable)`)
			fs.StringArrayVar(&domains, "domain", nil, "match domain: queries under it go to these nameservers (repeatable)")
			fs.BoolVar(&primary, "primary", false, "resolve every query not matched by another group")
			fs.StringArrayVar(&groups, "group", nil, "group of peers that use it (repeatable)")
			fs.BoolVar(&enabled, "enabled", true, "use the nameserver group")
		},
		body: func(_ context.Context, _ *adminClient, fs *pflag.FlagSet, _ *object) (map[string]any, error) {
			m := members{}
			m.set(fs, "name", "name", name)
			m.set(fs, "description", "description", description)
			m.set(fs, "primary", "primary", primary)
			m.set(fs, "enabled", "enabled", enabled)
			for _, l := range []struct {
				flag, key string
				vs        []string
			}{{"nameserver", "nameservers", nameservers}, {"domain", "domains", domains}, {"group", "groups", groups}} {
				if err := m.list(fs, l.flag, l.key, l.vs); err != nil {
					return nil, err
				}
			}
			return m, nil
		},
	}
}

// zoneJSON is the REST shape of a custom zone.
type zoneJSON struct {
	ID      string       `json:"id"`
	Domain  string       `json:"domain"`
	Records []recordJSON `json:"records"`
}

// recordJSON is a zone record, in the API and in policy files.
type recordJSON struct {
	Name  string `json:"name" yaml:"name"`
	Type  string `json:"type" yaml:"type"`
	Value string `json:"value" yaml:"value"`
	TTL   uint32 `json:"ttl" yaml:"ttl"`
}

var zonesDef = &resourceDef{
	use: "zones", aliases: []string{"zone"}, short: "Manage custom DNS zones served to peers",
	what: "zone", plural: "zones", path: "/api/dns/zones", nameField: "domain",
	table: tableOf([]string{"DOMAIN", "RECORDS", "ID"}, func(z zoneJSON) []string {
		return []string{z.Domain, fmt.Sprint(len(z.Records)), z.ID}
	}),
	create: func() *editor { return zoneEditor(true) },
	update: func() *editor { return zoneEditor(false) },
}

func zoneEditor(create bool) *editor {
	var domain string
	var records, add, remove []string
	return &editor{
		required: []string{"domain"},
		register: func(fs *pflag.FlagSet) {
			fs.StringVar(&domain, "domain", "", "zone domain, e.g. lab.example")
			fs.StringArrayVar(&records, "record", nil, `record "NAME [TTL] TYPE VALUE" as in a zone file, e.g. "db 60 A 10.0.0.5" (repeatable; replaces the records)`)
			if !create {
				fs.StringArrayVar(&add, "add-record", nil, `add a record "NAME [TTL] TYPE VALUE" (repeatable)`)
				fs.StringArrayVar(&remove, "remove-record", nil, `remove the records "NAME TYPE" or "NAME TYPE VALUE" (repeatable)`)
			}
		},
		body: func(_ context.Context, _ *adminClient, fs *pflag.FlagSet, cur *object) (map[string]any, error) {
			m := members{}
			m.set(fs, "domain", "domain", domain)
			if fs.Changed("record") {
				if len(add)+len(remove) > 0 {
					return nil, usageError{errors.New("--record replaces the records; do not combine it with --add-record or --remove-record")}
				}
				recs, err := parseRecords("--record", records)
				if err != nil {
					return nil, err
				}
				m["records"] = recs
			}
			if len(add)+len(remove) > 0 {
				recs, err := editRecords(cur, add, remove)
				if err != nil {
					return nil, err
				}
				m["records"] = recs
			}
			return m, nil
		},
	}
}

// parseRecords parses record flags; "" alone clears the records.
func parseRecords(flag string, specs []string) ([]recordJSON, error) {
	out := []recordJSON{}
	if len(specs) == 1 && strings.TrimSpace(specs[0]) == "" {
		return out, nil
	}
	for _, s := range specs {
		r, err := parseRecord(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s %q: %w", flag, s, err)}
		}
		out = append(out, r)
	}
	return out, nil
}

// parseRecord parses "NAME [TTL] TYPE VALUE"; VALUE is the rest of the
// line (a TXT value may hold spaces). "@" names the apex.
func parseRecord(s string) (recordJSON, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return recordJSON{}, errors.New(`want "NAME [TTL] TYPE VALUE"`)
	}
	r := recordJSON{Name: f[0]}
	rest := f[1:]
	if ttl, err := strconv.ParseUint(rest[0], 10, 32); err == nil {
		r.TTL = uint32(ttl)
		rest = rest[1:]
	}
	if len(rest) < 2 {
		return recordJSON{}, errors.New(`want "NAME [TTL] TYPE VALUE"`)
	}
	r.Type = strings.ToUpper(rest[0])
	r.Value = strings.Join(rest[1:], " ")
	return r, nil
}

// editRecords applies --add-record and --remove-record to cur's records.
func editRecords(cur *object, add, remove []string) ([]recordJSON, error) {
	var have []recordJSON
	if arr, ok := cur.fields["records"].([]any); ok {
		for _, e := range arr {
			m, _ := e.(map[string]any)
			r := recordJSON{}
			r.Name, _ = m["name"].(string)
			r.Type, _ = m["type"].(string)
			r.Value, _ = m["value"].(string)
			if ttl, ok := m["ttl"].(float64); ok {
				r.TTL = uint32(ttl)
			}
			have = append(have, r)
		}
	}
	for _, spec := range remove {
		f := strings.Fields(spec)
		if len(f) < 2 {
			return nil, usageError{fmt.Errorf(`--remove-record %q: want "NAME TYPE" or "NAME TYPE VALUE"`, spec)}
		}
		value := strings.Join(f[2:], " ")
		kept := have[:0:0]
		for _, r := range have {
			if strings.EqualFold(r.Name, f[0]) && strings.EqualFold(r.Type, f[1]) && (value == "" || r.Value == value) {
				continue
			}
			kept = append(kept, r)
		}
		if len(kept) == len(have) {
			return nil, usageError{fmt.Errorf("--remove-record %q: no such record in zone %s", spec, cur.str("domain"))}
		}
		have = kept
	}
	added, err := parseRecords("--add-record", add)
	if err != nil {
		return nil, err
	}
	return append(append([]recordJSON{}, have...), added...), nil
}

func newDNSSettingsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "settings", Short: "Show or change the account's DNS settings (the peer domain)"}
	var sf clientFlags
	var asJSON bool
	show := &cobra.Command{
		Use:   "show [--json]",
		Short: "Show the DNS settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			raw, err := c.send(cmd.Context(), "GET", "/api/dns/settings", nil, "")
			if err != nil {
				return fmt.Errorf("show dns settings: %w", err)
			}
			return printObject(cmd.OutOrStdout(), raw, asJSON)
		},
	}
	sf.register(show)
	show.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")

	var uf docFlags
	var domain string
	update := &cobra.Command{
		Use:   "update --dns-domain DOMAIN | update -f FILE",
		Short: "Change the DNS settings (PATCH), or replace them with a file (PUT)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set := cmd.Flags().Changed("dns-domain")
			if set == (uf.file != "") {
				return usageError{errors.New("give either --dns-domain or -f FILE")}
			}
			c, err := uf.client()
			if err != nil {
				return err
			}
			method, ctype := "PATCH", mediaMergePatch
			body := []byte(nil)
			if uf.file != "" {
				if body, err = readDocument(uf.file, cmd.InOrStdin()); err != nil {
					return err
				}
				method, ctype = "PUT", mediaJSON
			} else {
				body, _ = json.Marshal(map[string]string{"dns_domain": domain})
			}
			raw, err := c.send(cmd.Context(), method, "/api/dns/settings", body, ctype)
			if err != nil {
				return fmt.Errorf("update dns settings: %w", err)
			}
			if uf.asJSON {
				return printJSON(cmd.OutOrStdout(), raw)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "updated dns settings")
			return printYAML(cmd.OutOrStdout(), raw)
		},
	}
	uf.register(update, "JSON or YAML file with the whole settings (- for stdin)")
	update.Flags().StringVar(&domain, "dns-domain", "", "the peers' DNS domain, e.g. mesh.example")
	cmd.AddCommand(show, update)
	return cmd
}
