// Command lab builds and removes Petrel network labs (see package lab).
//
//	go run ./lab/cmd/lab up         # control plane + two NAT hosts, until Ctrl-C
//	go run ./lab/cmd/lab cleanup    # remove leftovers of dead runs
//
// Hidden helper subcommands run inside lab namespaces (via `ip netns exec`):
// dns-serve, dns-query, udp-reflect.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"petrel/lab"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	root := &cobra.Command{Use: "lab", Short: "Petrel network lab", SilenceUsage: true}
	var journalDir string
	root.PersistentFlags().StringVar(&journalDir, "journal-dir", lab.DefaultJournalDir, "lab journal directory")
	root.AddCommand(cleanupCmd(&journalDir, log), upCmd(&journalDir, log),
		dnsServeCmd(), dnsQueryCmd(), udpReflectCmd())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

func cleanupCmd(dir *string, log *slog.Logger) *cobra.Command {
	return &cobra.Command{
		Use:   "cleanup",
		Short: "remove namespaces, processes and files of lab runs whose owner died",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			removed, err := lab.CleanupStale(*dir, log)
			for _, ns := range removed {
				fmt.Fprintln(cmd.OutOrStdout(), "removed", ns)
			}
			return err
		},
	}
}

func upCmd(dir *string, log *slog.Logger) *cobra.Command {
	var nats []string
	c := &cobra.Command{
		Use:   "up",
		Short: "build the control plane and NAT hosts, print them, wait for Ctrl-C, tear down",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := lab.New(lab.Options{Logger: log, JournalDir: *dir})
			if err != nil {
				return err
			}
			defer l.Close()
			cp, err := l.AddControlPlane()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "lab %s\n%-10s %-22s %-16s %s\n", l.Prefix(), "host", "netns", "addr", "public")
			for _, h := range append([]*lab.Host{cp.Server, cp.DNS.Host}, cp.Relays...) {
				fmt.Fprintf(out, "%-10s %-22s %-16s %s\n", h.Name, h.NS, h.Addr, h.PublicAddr)
			}
			for i, n := range nats {
				kind, err := lab.ParseNATKind(n)
				if err != nil {
					return err
				}
				h, err := l.AddNATHost(fmt.Sprintf("host%d", i+1), kind)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%-10s %-22s %-16s %s (%s NAT in %s)\n", h.Name, h.NS, h.Addr, h.PublicAddr, kind, h.RouterNS)
			}
			fmt.Fprintf(out, "names: %s %s %s %s %s -> lab DNS %s\n", lab.MgmtName, lab.StunName,
				lab.RelayPoolName, lab.RelayEU, lab.RelayUS, lab.DNSAddr)
			fmt.Fprintln(out, "try: ip netns exec", l.Prefix()+"-host1", "getent hosts", lab.RelayPoolName, "; Ctrl-C tears down")
			<-cmd.Context().Done()
			return l.Close()
		},
	}
	c.Flags().StringSliceVar(&nats, "nat", []string{"eim", "symmetric"}, "NAT kind of each host (eim|symmetric)")
	return c
}

func dnsServeCmd() *cobra.Command {
	var listen string
	var recs []string
	c := &cobra.Command{
		Use:    "dns-serve",
		Hidden: true,
		Short:  "serve A records on UDP+TCP (run inside a namespace)",
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := lab.NewRecords()
			for _, rec := range recs {
				name, ips, ok := strings.Cut(rec, "=")
				if !ok {
					return fmt.Errorf("record %q: want name=ip[,ip]", rec)
				}
				var addrs []netip.Addr
				for _, s := range strings.Split(ips, ",") {
					a, err := netip.ParseAddr(s)
					if err != nil {
						return fmt.Errorf("record %q: %w", rec, err)
					}
					addrs = append(addrs, a)
				}
				r.Set(name, addrs...)
			}
			pc, err := net.ListenPacket("udp", listen)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			stop, err := lab.ServeDNSOn(pc, ln, r)
			if err != nil {
				return err
			}
			<-cmd.Context().Done()
			stop()
			return nil
		},
	}
	c.Flags().StringVar(&listen, "listen", ":53", "address to serve on")
	c.Flags().StringArrayVar(&recs, "record", nil, "name=ip[,ip] (repeatable)")
	return c
}

func dnsQueryCmd() *cobra.Command {
	var server string
	c := &cobra.Command{
		Use:    "dns-query NAME",
		Hidden: true,
		Short:  "print the A records of NAME from --server",
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ap, err := netip.ParseAddrPort(server)
			if err != nil {
				return err
			}
			addrs, err := lab.Query(cmd.Context(), nil, ap, args[0])
			if err != nil {
				return err
			}
			for _, a := range addrs {
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			return nil
		},
	}
	c.Flags().StringVar(&server, "server", lab.DNSAddr.String()+":53", "DNS server ip:port")
	return c
}

func udpReflectCmd() *cobra.Command {
	var listen string
	c := &cobra.Command{
		Use:    "udp-reflect",
		Hidden: true,
		Short:  "answer each UDP datagram with the sender's ip:port",
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc, err := net.ListenPacket("udp4", listen)
			if err != nil {
				return err
			}
			defer pc.Close()
			fmt.Fprintln(cmd.OutOrStdout(), "reflecting on", pc.LocalAddr())
			return lab.ReflectUDP(cmd.Context(), pc)
		},
	}
	c.Flags().StringVar(&listen, "listen", ":3479", "address to listen on")
	return c
}
