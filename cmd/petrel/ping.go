package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"petrel/proto/daemonpb"
)

func newPingCmd(g *globalFlags) *cobra.Command {
	var (
		count    int
		interval time.Duration
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ping PEER",
		Short: "Ping a peer over the overlay (name, FQDN or IP) and show the path that answered",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, closeFn, err := dialDaemon(g.socketPath())
			if err != nil {
				return err
			}
			defer closeFn()
			ctx, cancel := withTimeout(time.Duration(count)*(interval+timeout) + 10*time.Second)
			defer cancel()
			stream, err := cl.Ping(ctx, &daemonpb.PingRequest{Peer: args[0], Count: int32(count),
				IntervalMs: interval.Milliseconds(), TimeoutMs: timeout.Milliseconds()})
			if err != nil {
				return rpcErr(err)
			}
			out := cmd.OutOrStdout()
			ok := 0
			for {
				r, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return rpcErr(err)
				}
				if r.Error != "" {
					fmt.Fprintf(out, "%s seq=%d: %s\n", r.Ip, r.Seq, r.Error)
					continue
				}
				ok++
				fmt.Fprintf(out, "reply from %s (%s) seq=%d time=%.2f ms via %s\n", r.Ip, args[0], r.Seq, r.RttMs, r.Path)
			}
			if ok == 0 {
				return &exitError{1, fmt.Errorf("no reply from %s", args[0])}
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&count, "count", "c", 3, "number of probes")
	cmd.Flags().DurationVarP(&interval, "interval", "i", time.Second, "time between probes")
	cmd.Flags().DurationVarP(&timeout, "timeout", "W", 5*time.Second, "time to wait for each reply")
	return cmd
}
