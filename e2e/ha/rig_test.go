package ha

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// rig is the running cluster: database, instances, proxy, admin loop,
// simulated and real agents.
type rig struct {
	t        *testing.T
	pg       *postgres
	dir      string
	petrel   string
	proxy    *proxy
	inst     []*instance
	admin    *admin
	setupKey string // for real agents
	changer  *changer
	sims     *sims
	real     []*realAgent
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// newRig starts everything: three instances (the first alone, so it
// creates the account), nSims simulated and nReal real agents, and the
// admin loop (a policy change every 500 ms).
func newRig(t *testing.T, nSims, nReal int) *rig {
	pg := startPostgres(t)
	r := &rig{t: t, pg: pg, dir: t.TempDir()}
	if keep := os.Getenv("PETREL_HA_KEEP"); keep != "" { // logs survive the test
		var err error
		if r.dir, err = os.MkdirTemp(keep, "ha-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("rig directory (kept): %s", r.dir)
	}
	bin := filepath.Join(r.dir, "bin")
	build := exec.Command("bash", filepath.Join(moduleRoot(t), "scripts", "build.sh"), bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	r.petrel = filepath.Join(bin, "petrel")
	p, err := newProxy()
	if err != nil {
		t.Fatal(err)
	}
	r.proxy = p
	t.Cleanup(p.close)
	r.inst = newInstances(t, filepath.Join(bin, "petrel-server"), r.dir, pg.dsn, "http://"+p.addr(), 3)
	addrs := make([]string, len(r.inst))
	for i, in := range r.inst {
		addrs[i] = in.addr
		t.Cleanup(in.stop)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, a := range r.real {
				t.Logf("log of %s, last lines:\n%s", a.name, tail(a.logPath, 40))
			}
			for _, in := range r.inst {
				t.Logf("log of instance %d (%s), last lines:\n%s", in.idx, in.logPath, tail(in.logPath, 40))
			}
		}
	})
	r.inst[0].start(t)
	for _, in := range r.inst[1:] {
		in.start(t)
	}
	p.start(addrs)
	token, err := os.ReadFile(filepath.Join(r.inst[0].dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	r.admin = newAdmin(p.addr(), strings.TrimSpace(string(token)))
	ctx := ctxFor(t, 2*time.Minute)
	simKey, realKey, err := r.admin.setup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.setupKey = realKey
	start := time.Now()
	if r.sims, err = newSims(ctx, p.addr(), simKey, nSims); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.sims.close)
	t.Logf("%d simulated agents registered in %v", nSims, time.Since(start).Round(time.Millisecond))
	for i := range nReal {
		r.real = append(r.real, startReal(t, r.petrel, r.dir, fmt.Sprintf("real%d", i), "http://"+p.addr(), r.setupKey))
	}
	r.changer = startChanger(r.admin, 500*time.Millisecond)
	t.Cleanup(r.changer.stop)
	r.barrier("the rig is up")
	r.meshUp(r.real...)
	return r
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil polls cond every 50 ms until it holds or limit passes.
func waitUntil(limit time.Duration, cond func() bool) bool {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// barrier makes one change now and waits until every simulated agent
// holds it on a live stream, and every instance serves it.
func (r *rig) barrier(what string) time.Duration {
	r.t.Helper()
	start := time.Now()
	seq, err := r.changer.change(ctxFor(r.t, 2*time.Minute))
	if err != nil {
		r.t.Fatalf("%s: barrier change: %v", what, err)
	}
	behind := func() (n int) {
		for _, a := range r.sims.agents {
			if !a.holds(seq) {
				n++
			}
		}
		return n
	}
	if !waitUntil(2*time.Minute, func() bool { return behind() == 0 }) {
		r.t.Fatalf("%s: %d agents never got change %d", what, behind(), seq)
	}
	took := time.Since(start)
	for _, in := range r.inst {
		if !waitUntil(30*time.Second, func() bool { return r.instanceServes(in, seq) }) {
			r.t.Fatalf("%s: instance %d does not serve change %d", what, in.idx, seq)
		}
	}
	return took
}

// instanceServes asks one instance directly (not through the proxy)
// whether its policy holds change seq (or a later one).
func (r *rig) instanceServes(in *instance, seq int) bool {
	req, _ := http.NewRequest("GET", "http://"+in.addr+"/api/policies/"+r.admin.policy, nil)
	req.Header.Set("Authorization", "Bearer "+r.admin.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var p struct {
		Rules []struct {
			Ports []string `json:"ports"`
		} `json:"rules"`
	}
	if json := decodeJSON(resp, &p); json != nil || len(p.Rules) == 0 || len(p.Rules[0].Ports) == 0 {
		return false
	}
	port, err := strconv.Atoi(p.Rules[0].Ports[0])
	return err == nil && port >= basePort+seq // the admin loop may be further
}

// meshUp waits until every pair of the real agents has a direct path.
func (r *rig) meshUp(agents ...*realAgent) {
	r.t.Helper()
	ctx := ctxFor(r.t, 3*time.Minute)
	for _, a := range agents {
		var others []string
		for _, b := range r.real {
			if b != a {
				others = append(others, b.name)
			}
		}
		if !waitUntil(2*time.Minute, func() bool { return a.p2pWith(ctx, others...) }) {
			st, _ := a.status(ctx)
			r.t.Fatalf("%s has no direct path to every peer %v: %+v; log:\n%s", a.name, others, st, tail(a.logPath, 30))
		}
	}
}

// presence reads which instance holds a peer's signal session.
func (r *rig) presence(ctx context.Context, pub string) (string, error) {
	conn, err := pgx.Connect(ctx, r.pg.dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var inst string
	err = conn.QueryRow(ctx, `SELECT instance FROM signal_presence WHERE peer_key = $1`, pub).Scan(&inst)
	return inst, err
}

// pinger pings peer from a for the given time in the background, and
// counts the packets both agents exchanged meanwhile.
type pinger struct {
	wg       sync.WaitGroup
	res      pingResult
	err      error
	from, to *realAgent
	start    [2]packets // from's and to's counters with each other
	toSent   uint64     // to's sent counter, read after from's (below)
	cerr     error
}

func (r *rig) startPing(a, b *realAgent, d time.Duration) *pinger {
	p := &pinger{from: a, to: b}
	ctx := ctxFor(r.t, time.Minute)
	// Each direction's receiver is read before its sender (b, a, then b
	// again): a packet in flight meanwhile is then counted as received
	// but not as sent, never as lost.
	if p.start[1], p.cerr = b.packetsWith(ctx, a.name); p.cerr == nil {
		if p.start[0], p.cerr = a.packetsWith(ctx, b.name); p.cerr == nil {
			var again packets
			again, p.cerr = b.packetsWith(ctx, a.name)
			p.toSent = again.out
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		n := int(d / (200 * time.Millisecond))
		// Every probe may wait its 5 s for an answer.
		ctx, cancel := context.WithTimeout(context.Background(), d+time.Duration(n)*5*time.Second+30*time.Second)
		defer cancel()
		p.res, p.err = a.ping(ctx, b.name, n, 200*time.Millisecond)
	}()
	return p
}

// check waits for the pings and fails the test if the tunnel lost or
// dropped a packet either way: every packet one agent sent to the other
// meanwhile (the probes, the replies, and the agents' own traffic) must
// have been received. This is judged on the agents' packet counters, not
// on the ping tool's answers: the userspace stack's ping socket misses
// about one reply in 300 that did arrive (the counters show it
// received), with or without any change to the control plane.
func (p *pinger) check(t *testing.T) {
	t.Helper()
	p.wg.Wait()
	if p.err != nil {
		t.Fatalf("ping %s -> %s: %v", p.from.name, p.to.name, p.err)
	}
	if p.cerr != nil {
		t.Fatalf("counters before the pings: %v", p.cerr)
	}
	ctx := ctxFor(t, time.Minute)
	// The senders first, then (once what is in flight has landed) the
	// receivers.
	var end [2]packets
	var err error
	if end[0], err = p.from.packetsWith(ctx, p.to.name); err != nil {
		t.Fatal(err)
	}
	endTo, err := p.to.packetsWith(ctx, p.from.name)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if end[1], err = p.to.packetsWith(ctx, p.from.name); err != nil {
		t.Fatal(err)
	}
	endFrom, err := p.from.packetsWith(ctx, p.to.name)
	if err != nil {
		t.Fatal(err)
	}
	s := p.res.Summary
	sentAB, gotAB := end[0].out-p.start[0].out, end[1].in-p.start[1].in
	sentBA, gotBA := endTo.out-p.toSent, endFrom.in-p.start[0].in
	dropped := end[0].dropped - p.start[0].dropped + end[1].dropped - p.start[1].dropped
	t.Logf("ping %s -> %s: %d/%d probes answered (paths %v); tunnel: %d sent, %d received that way, %d sent, %d received back, %d dropped",
		p.from.name, p.to.name, s.Received, s.Sent, s.Paths, sentAB, gotAB, sentBA, gotBA, dropped)
	if s.Sent == 0 || s.Received == 0 {
		t.Fatalf("ping %s -> %s: no probe answered", p.from.name, p.to.name)
	}
	if gotAB < sentAB || gotBA < sentBA || dropped > 0 {
		for _, pr := range p.res.Probes {
			if pr.Error != "" {
				t.Logf("probe %d (~%s after the pings started): %s", pr.Seq, time.Duration(pr.Seq)*200*time.Millisecond, pr.Error)
			}
		}
		t.Fatalf("the tunnel between %s and %s lost packets: %d of %d one way, %d of %d back, %d dropped",
			p.from.name, p.to.name, sentAB-min(gotAB, sentAB), sentAB, sentBA-min(gotBA, sentBA), sentBA, dropped)
	}
}

// percentile of sorted durations (nearest rank).
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d))*p+0.999999) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func summarize(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %v, p95 %v, max %v (n=%d)", percentile(s, 0.5).Round(time.Millisecond),
		percentile(s, 0.95).Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
}

// report appends lines to $PETREL_HA_REPORT (make bench) if set.
func report(t *testing.T, lines ...string) {
	path := os.Getenv("PETREL_HA_REPORT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Errorf("report: %v", err)
		return
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
}
