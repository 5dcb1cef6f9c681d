package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"petrel/client/engine"
	"petrel/proto/daemonpb"
)

// dnsJSON is the `dns` field of `petrel status --json`.
type dnsJSON struct {
	Listeners []string `json:"listeners"`
	HostMode  string   `json:"host_mode"`
	Domain    string   `json:"domain"`
	Bypass    bool     `json:"bypass"`
	Error     string   `json:"error,omitempty"`
}

func toDNSJSON(d *daemonpb.DNSInfo) *dnsJSON {
	if d == nil {
		return nil
	}
	return &dnsJSON{Listeners: d.Listeners, HostMode: d.HostMode, Domain: d.Domain, Bypass: d.Bypass, Error: d.Error}
}

func newDNSCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "dns", Short: "Inspect the agent's DNS resolver"}
	var asJSON bool
	st := &cobra.Command{
		Use:   "status",
		Short: "Show the resolver: listeners, host mode, handlers, upstream health, cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var r *daemonpb.JSONReply
			if err := callDaemon(g, 10*time.Second, func(ctx context.Context, cl daemonpb.DaemonClient) (err error) {
				r, err = cl.DNSStatus(ctx, &daemonpb.DNSStatusRequest{})
				return err
			}); err != nil {
				return err
			}
			if asJSON {
				_, err := io.WriteString(cmd.OutOrStdout(), r.Json+"\n")
				return err
			}
			var d engine.DNSDetails
			if err := json.Unmarshal([]byte(r.Json), &d); err != nil {
				return fmt.Errorf("decode DNS status: %w", err)
			}
			printDNSStatus(cmd.OutOrStdout(), d)
			return nil
		},
	}
	st.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	var qJSON bool
	q := &cobra.Command{
		Use:   "query NAME [TYPE]",
		Short: "Resolve NAME through the agent's resolver and say which handler answered",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &daemonpb.DNSQueryRequest{Name: args[0]}
			if len(args) == 2 {
				req.Type = args[1]
			}
			var r *daemonpb.JSONReply
			if err := callDaemon(g, 15*time.Second, func(ctx context.Context, cl daemonpb.DaemonClient) (err error) {
				r, err = cl.DNSQuery(ctx, req)
				return err
			}); err != nil {
				return err
			}
			if qJSON {
				_, err := io.WriteString(cmd.OutOrStdout(), r.Json+"\n")
				return err
			}
			var a struct {
				Name, Type, Rcode, Handler, Domain, How string
				Records                                 []string
				Priority                                int
				Authoritative                           bool
			}
			if err := json.Unmarshal([]byte(r.Json), &a); err != nil {
				return fmt.Errorf("decode answer: %w", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s %s: %s\n", a.Name, a.Type, a.Rcode)
			for _, rr := range a.Records {
				fmt.Fprintf(w, "  %s\n", rr)
			}
			fmt.Fprintf(w, "answered by %s (priority %d", a.Handler, a.Priority)
			if a.Domain != "" {
				fmt.Fprintf(w, ", domain %s", a.Domain)
			}
			fmt.Fprintf(w, "): %s\n", a.How)
			return nil
		},
	}
	q.Flags().BoolVar(&qJSON, "json", false, "print JSON")
	cmd.AddCommand(st, q)
	return cmd
}

func printDNSStatus(w io.Writer, d engine.DNSDetails) {
	if d.Error != "" {
		fmt.Fprintf(w, "Problem:    %s\n", d.Error)
	}
	if d.Host != nil {
		fmt.Fprintf(w, "Host:       %s", d.Host.Mode)
		if d.Host.ResolvConf != "" {
			fmt.Fprintf(w, " (%s, backup %s, %d repairs)", d.Host.ResolvConf, d.Host.Backup, d.Host.Repairs)
		}
		fmt.Fprintln(w)
	}
	r := d.Resolver
	if r == nil {
		fmt.Fprintln(w, "Resolver:   not running")
		return
	}
	fmt.Fprintf(w, "Listening:  %s\n", strings.Join(r.Listeners, ", "))
	fmt.Fprintf(w, "Domain:     %s\n", r.Domain)
	if len(r.Bypass) > 0 {
		fmt.Fprintf(w, "Bypass:     %s (original nameservers over control-plane sockets)\n", strings.Join(r.Bypass, ", "))
	} else {
		fmt.Fprintln(w, "Bypass:     none (no usable original nameserver)")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nPRIORITY\tHANDLER\tDOMAIN\tSERVERS")
	for _, h := range r.Handlers {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", h.Priority, h.Name, h.Domain, strings.Join(h.Servers, " "))
	}
	tw.Flush()
	if len(r.Upstreams) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nUPSTREAM\tHEALTHY\tOK/FAILED\tLAST ERROR")
		for _, u := range r.Upstreams {
			fmt.Fprintf(tw, "%s\t%v\t%d/%d\t%s\n", u.Server, u.Healthy, u.OK, u.Failures, u.LastError)
		}
		tw.Flush()
	}
	if len(r.Cache) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nCACHED NAME\tTYPE\tADDRESSES\tAGE\tSOURCE")
		for _, c := range r.Cache {
			age := fmt.Sprintf("%.0fs", c.AgeSeconds)
			if c.Stale {
				age += " (stale)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Type, strings.Join(c.Addrs, " "), age, c.Source)
		}
		tw.Flush()
	}
}
