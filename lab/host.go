package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Command returns an unstarted command that runs argv inside the host's
// namespace through `ip netns exec`, so /etc/netns/<ns>/resolv.conf is
// bind-mounted over /etc/resolv.conf for it. Adjust Env, Dir or Stdin and
// hand it to StartCmd (or Run it yourself for a short command).
func (h *Host) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"netns", "exec", h.NS}, argv...)
	return exec.CommandContext(ctx, "ip", args...)
}

// Run executes argv in the host's namespace and returns its combined
// output; a non-zero exit is an error that includes the output.
func (h *Host) Run(ctx context.Context, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("run in %s: empty command", h.Name)
	}
	out, err := h.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("run %q in %s: %w: %s", strings.Join(argv, " "), h.Name, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Start runs argv in the host's namespace in the background. The lab stops
// it on Close; see Proc.
func (h *Host) Start(ctx context.Context, argv ...string) (*Proc, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("start in %s: empty command", h.Name)
	}
	return h.StartCmd(h.Command(ctx, argv...))
}

// StartCmd starts a command made by Command (possibly adjusted) and tracks
// it. Output goes to the Proc's buffer (Proc.Output) unless cmd.Stdout or
// cmd.Stderr is already set, and to a log file when Options.LogDir is set.
func (h *Host) StartCmd(cmd *exec.Cmd) (*Proc, error) {
	return h.lab.startProc(h, cmd)
}

// Do runs fn on an OS thread that has joined the host's namespace. Sockets
// fn creates stay in that namespace. fn must not start goroutines that
// expect to run in the namespace.
func (h *Host) Do(fn func() error) error {
	return inNetNS(h.NS, fn)
}

// ListenUDP opens a UDP socket on addr ("ip:port", ":0") inside the host's
// namespace; use it from any goroutine.
func (h *Host) ListenUDP(addr string) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := h.Do(func() error {
		ua, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp4", ua)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen udp %s in %s: %w", addr, h.Name, err)
	}
	return c, nil
}

// ListenTCP opens a TCP listener on addr inside the host's namespace.
func (h *Host) ListenTCP(addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s in %s: %w", addr, h.Name, err)
	}
	return ln, nil
}

// DialContext connects from inside the host's namespace. The address must
// be an IP literal (name resolution would run in the caller's namespace).
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s from %s: %w", network, addr, h.Name, err)
	}
	return c, nil
}

// inNetNS runs fn on a locked OS thread that has joined namespace ns. If the
// thread cannot return to its original namespace it stays locked, so the Go
// runtime discards it when the goroutine ends.
func inNetNS(ns string, fn func() error) error {
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return fmt.Errorf("open namespace: %w", err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// SetLoss drops pct percent of the host's internet traffic in each
// direction (nft numgen on the NAT router's forward path, or on the bridge
// host's own input/output). 0 removes the impairment.
func (h *Host) SetLoss(pct int) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("set loss on %s: %d%% out of range", h.Name, pct)
	}
	h.imp.Lock()
	defer h.imp.Unlock()
	old := h.lossPct
	h.lossPct = pct
	if err := h.applyImpairLocked(); err != nil {
		h.lossPct = old
		return fmt.Errorf("set loss on %s: %w", h.Name, err)
	}
	return nil
}

// SetDelay adds d to the host's internet traffic in each direction (so
// d*2 to a round trip with an undelayed peer), on the same path as
// SetLoss. Packets go through an NFQUEUE served by this process, so a
// delayed path carries at most tens of thousands of packets per second.
// 0 removes it.
func (h *Host) SetDelay(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("set delay on %s: negative delay", h.Name)
	}
	h.imp.Lock()
	defer h.imp.Unlock()
	if h.impairNS == "" {
		return fmt.Errorf("set delay on %s: host has no internet uplink", h.Name)
	}
	if d > 0 && h.delayer == nil {
		q, err := startDelayer(h.impairNS, d)
		if err != nil {
			return fmt.Errorf("set delay on %s: %w", h.Name, err)
		}
		h.delayer = q
	}
	if h.delayer != nil {
		h.delayer.setDelay(d)
	}
	h.delay = d
	if err := h.applyImpairLocked(); err != nil {
		return fmt.Errorf("set delay on %s: %w", h.Name, err)
	}
	if d == 0 && h.delayer != nil {
		h.delayer.close()
		h.delayer = nil
	}
	return nil
}

// closeImpairments stops the host's delayer (Lab.Close).
func (h *Host) closeImpairments() {
	h.imp.Lock()
	defer h.imp.Unlock()
	if h.delayer != nil {
		h.delayer.close()
		h.delayer = nil
	}
}

// applyImpairLocked rewrites the host's impairment table from lossPct and
// delay: loss first, then the queue rule that feeds the delayer.
func (h *Host) applyImpairLocked() error {
	if h.impairNS == "" {
		return fmt.Errorf("host has no internet uplink")
	}
	table := h.lab.prefix + "-impair"
	hooks := []string{"forward"}
	if h.RouterNS == "" {
		hooks = []string{"input", "output"}
	}
	var b strings.Builder
	// Create-then-delete makes the script work whether the table exists.
	fmt.Fprintf(&b, "table inet %s {}\ndelete table inet %s\n", table, table)
	if h.lossPct > 0 {
		fmt.Fprintf(&b, "table inet %s {\n", table)
		for _, hook := range hooks {
			fmt.Fprintf(&b, "  chain %s {\n    type filter hook %s priority filter - 10; policy accept;\n", hook, hook)
			switch {
			case h.lossPct >= 100: // a blackhole (nft's numgen compare stops at 99)
				b.WriteString("    oifname != \"lo\" drop\n")
			case h.lossPct > 0:
				fmt.Fprintf(&b, "    oifname != \"lo\" numgen random mod 100 < %d drop\n", h.lossPct)
			}
			b.WriteString("  }\n")
		}
		b.WriteString("}\n")
	}
	ctx, cancel := opCtx()
	defer cancel()
	if _, err := nsRun(ctx, h.impairNS, b.String(), "nft", "-f", "-"); err != nil {
		return err
	}
	return h.applyQueueRulesLocked(ctx)
}

// applyQueueRulesLocked adds or removes the rules feeding the delayer.
// This kernel has no nft `queue` expression but has the xtables NFQUEUE
// target, so they are iptables rules (mangle table) in the host's or
// router's own namespace.
func (h *Host) applyQueueRulesLocked(ctx context.Context) error {
	rules := [][]string{{"FORWARD"}}
	if h.RouterNS == "" {
		rules = [][]string{{"INPUT", "!", "-i", "lo"}, {"OUTPUT", "!", "-o", "lo"}}
	}
	for _, r := range rules {
		spec := append(append([]string{}, r[1:]...), "-j", "NFQUEUE", "--queue-num", fmt.Sprint(delayQueueNum), "--queue-bypass")
		argv := func(op string) []string {
			return append([]string{"iptables", "-w", "-t", "mangle", op, r[0]}, spec...)
		}
		_, present := nsRun(ctx, h.impairNS, "", argv("-C")...)
		switch {
		case h.delay > 0 && present != nil:
			if _, err := exec.LookPath("iptables"); err != nil {
				return fmt.Errorf("delay needs iptables (apt-get install iptables): %w", err)
			}
			if _, err := nsRun(ctx, h.impairNS, "", argv("-A")...); err != nil {
				return err
			}
		case h.delay == 0 && present == nil:
			if _, err := nsRun(ctx, h.impairNS, "", argv("-D")...); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetRate limits the host's internet traffic to mbit Mbit/s in each
// direction with a token bucket (tc tbf) on both ends of its bridge link
// (the NAT router's WAN for a NAT host). 0 removes the limit.
func (h *Host) SetRate(mbit int) error {
	if h.impairNS == "" {
		return fmt.Errorf("set rate on %s: host has no internet uplink", h.Name)
	}
	if mbit < 0 {
		return fmt.Errorf("set rate on %s: negative rate", h.Name)
	}
	ctx, cancel := opCtx()
	defer cancel()
	for _, d := range h.rateDevs {
		var argv []string
		if mbit == 0 {
			argv = []string{"tc", "-n", d.ns, "qdisc", "del", "dev", d.dev, "root"}
		} else {
			argv = []string{"tc", "-n", d.ns, "qdisc", "replace", "dev", d.dev, "root",
				"tbf", "rate", fmt.Sprintf("%dmbit", mbit), "burst", "64kb", "latency", "50ms"}
		}
		if out, err := run(ctx, "", argv...); err != nil {
			if mbit == 0 && (strings.Contains(out, "No such file") || strings.Contains(out, "handle of zero")) {
				continue // no limit was set
			}
			return fmt.Errorf("set rate on %s: %w", h.Name, err)
		}
	}
	return nil
}

// Qdiscs returns `tc qdisc show` for the devices SetRate shapes.
func (h *Host) Qdiscs() (string, error) {
	ctx, cancel := opCtx()
	defer cancel()
	var b strings.Builder
	for _, d := range h.rateDevs {
		if d.ns == "" {
			continue
		}
		out, err := run(ctx, "", "tc", "-n", d.ns, "qdisc", "show", "dev", d.dev)
		if err != nil {
			return "", err
		}
		b.WriteString(out)
	}
	return b.String(), nil
}

// FlushConntrack forgets every NAT mapping and connection the host's router
// tracks (between scenarios). A bridge host flushes its own table.
func (h *Host) FlushConntrack() error {
	ns := h.RouterNS
	if ns == "" {
		ns = h.NS
	}
	ctx, cancel := opCtx()
	defer cancel()
	if out, err := nsRun(ctx, ns, "", "conntrack", "-F"); err != nil && !strings.Contains(out, "flow entries have been deleted") {
		return fmt.Errorf("flush conntrack of %s: %w", h.Name, err)
	}
	return nil
}

// ChangePublicAddr gives a NAT host's router a new WAN address, as when an
// ISP renumbers a line or a laptop moves to another network: the old
// address and every mapping and connection tracked on it disappear, so
// the host's TCP connections and UDP mappings through the NAT break.
func (h *Host) ChangePublicAddr() (netip.Addr, error) {
	l := h.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if h.RouterNS == "" {
		return netip.Addr{}, fmt.Errorf("change public address of %s: not behind a NAT router", h.Name)
	}
	var next netip.Addr
	for n := l.nextLAN; n <= 150; n++ {
		a := netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + n)})
		if !l.bridgeIPs[a] {
			next = a
			break
		}
	}
	if !next.IsValid() {
		return netip.Addr{}, fmt.Errorf("change public address of %s: no free WAN address", h.Name)
	}
	if err := l.claimBridgeIPLocked(next); err != nil {
		return netip.Addr{}, fmt.Errorf("change public address of %s: %w", h.Name, err)
	}
	ctx, cancel := opCtx()
	defer cancel()
	wan := l.devName("wan")
	for _, argv := range [][]string{
		{"ip", "-n", h.RouterNS, "addr", "del", netip.PrefixFrom(h.PublicAddr, InternetPrefix.Bits()).String(), "dev", wan},
		{"ip", "-n", h.RouterNS, "addr", "add", netip.PrefixFrom(next, InternetPrefix.Bits()).String(), "dev", wan},
		{"ip", "-n", h.RouterNS, "route", "replace", "default", "via", InternetGateway.String()},
	} {
		if _, err := run(ctx, "", argv...); err != nil {
			return netip.Addr{}, fmt.Errorf("change public address of %s: %w", h.Name, err)
		}
	}
	if out, err := nsRun(ctx, h.RouterNS, "", "conntrack", "-F"); err != nil && !strings.Contains(out, "flow entries have been deleted") {
		return netip.Addr{}, fmt.Errorf("change public address of %s: flush conntrack: %w", h.Name, err)
	}
	delete(l.bridgeIPs, h.PublicAddr)
	h.PublicAddr = next
	return next, nil
}
