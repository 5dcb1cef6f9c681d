// Command signal-bench measures the Petrel signal server: it starts one
// server on a loopback gRPC listener, connects N real clients (each with its
// own TCP connection, registration and end-to-end sealing) and has them send
// sealed PeerMessages to random other clients, then reports delivered
// messages per second and the send→handler latency percentiles.
//
// Each client keeps at most -inflight messages outstanding (closed loop), so
// the run measures throughput at saturation without unbounded queueing.
// -rate caps the total offered load (0 = closed loop only) for latency at a
// given load.
//
//	go run ./bench/signal -clients 1000 -duration 10s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"petrel/internal/keys"
	"petrel/proto/signalpb"
	"petrel/signal"
	"petrel/signal/client"
)

type result struct {
	Clients    int          `json:"clients"`
	Inflight   int          `json:"inflight_per_client"`
	Peers      int          `json:"peers_per_client"`
	RateLimit  int          `json:"rate_limit"`
	Seconds    float64      `json:"seconds"`
	Delivered  int64        `json:"delivered"`
	MsgsPerSec float64      `json:"msgs_per_sec"`
	P50Ms      float64      `json:"p50_ms"`
	P99Ms      float64      `json:"p99_ms"`
	MaxMs      float64      `json:"max_ms"`
	Undeliv    int64        `json:"undeliverable"`
	GoMaxProcs int          `json:"gomaxprocs"`
	CPUCores   float64      `json:"cpu_cores_used"`
	Server     signal.Stats `json:"server"`
}

func main() {
	n := flag.Int("clients", 1000, "connected clients")
	dur := flag.Duration("duration", 10*time.Second, "measurement time")
	warm := flag.Duration("warmup", 2*time.Second, "warm-up before measuring")
	inflight := flag.Int("inflight", 8, "max outstanding messages per client")
	peers := flag.Int("peers", 16, "distinct peers each client sends to (0 = all; each new pair costs one X25519)")
	rate := flag.Int("rate", 0, "total offered messages/s (0 = as fast as the closed loop allows)")
	asJSON := flag.Bool("json", false, "print JSON")
	cpuProf := flag.String("cpuprofile", "", "write a CPU profile of the measured interval")
	traceOut := flag.String("trace", "", "write an execution trace of one second of the measured interval")
	stacks := flag.String("goroutines", "", "write an aggregated goroutine dump taken mid-run")
	flag.BoolVar(&staticWindow, "static-window", true, "server: fixed HTTP/2 windows (no BDP ping per frame)")
	flag.Parse()
	stacksFile = *stacks
	profile = *cpuProf
	traceFile = *traceOut
	res, err := run(*n, *dur, *warm, *inflight, *rate, *peers)
	if err != nil {
		log.Fatal(err)
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	fmt.Printf("clients=%d inflight=%d rate=%d gomaxprocs=%d cpu=%.2f cores\n", res.Clients, res.Inflight, res.RateLimit, res.GoMaxProcs, res.CPUCores)
	fmt.Printf("cpu cost: %.1f µs/msg (%.0f msgs per CPU-second)\n", res.CPUCores*res.Seconds/float64(res.Delivered)*1e6, float64(res.Delivered)/(res.CPUCores*res.Seconds))
	fmt.Printf("delivered %d in %.1fs: %.0f msgs/s  p50 %.2f ms  p99 %.2f ms  max %.2f ms  undeliverable %d\n",
		res.Delivered, res.Seconds, res.MsgsPerSec, res.P50Ms, res.P99Ms, res.MaxMs, res.Undeliv)
	fmt.Printf("server: %+v\n", res.Server)
}

type benchClient struct {
	c     *client.Client
	peers []int // indexes of the clients this one sends to
	sem   chan struct{}
	lats  []time.Duration // written only by this client's receive goroutine
}

func run(n int, dur, warm time.Duration, inflight, rate, peers int) (*result, error) {
	skey, err := keys.NewPrivate()
	if err != nil {
		return nil, err
	}
	srv := signal.NewServer(signal.Config{Key: skey, QueueSize: 4096, Rate: -1, ByteRate: -1, MaxSessionsPerSource: -1, OpenRate: -1})
	var sopts []grpc.ServerOption
	if staticWindow {
		// Fixed windows turn off gRPC's BDP probing, which otherwise sends a
		// ping per data frame on lightly loaded connections.
		sopts = append(sopts, signal.ServerOptions()...)
	}
	gs := grpc.NewServer(sopts...)
	srv.Register(gs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	go func() { _ = gs.Serve(ln) }()
	defer func() { srv.Stop(); gs.Stop() }()

	var measuring atomic.Bool
	var delivered, undeliv atomic.Int64
	cs := make([]*benchClient, n)
	index := make(map[keys.Public]int, n)
	for i := range cs {
		k, err := keys.NewPrivate()
		if err != nil {
			return nil, err
		}
		cs[i] = &benchClient{sem: make(chan struct{}, inflight)}
		cs[i].c = client.New(client.Config{Target: ln.Addr().String(), Key: k, QueueSize: 4 * inflight})
		index[k.Public()] = i
	}
	for i, bc := range cs {
		if peers <= 0 || peers >= n {
			for j := range cs {
				if j != i {
					bc.peers = append(bc.peers, j)
				}
			}
			continue
		}
		for _, j := range rand.Perm(n - 1)[:peers] {
			if j >= i {
				j++
			}
			bc.peers = append(bc.peers, j)
		}
	}
	for _, bc := range cs {
		bc := bc
		bc.c.SetHandler(func(from keys.Public, m *signalpb.PeerMessage) {
			sent := int64(m.GetCandidate().GetSessionId())
			if measuring.Load() {
				bc.lats = append(bc.lats, time.Duration(time.Now().UnixNano()-sent))
				delivered.Add(1)
			}
			<-cs[index[from]].sem
		})
		bc.c.OnError(func(e *client.DeliveryError) {
			undeliv.Add(1)
			// The sender is this client: release its slot.
			<-bc.sem
		})
		if err := bc.c.Start(context.Background()); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, bc := range cs {
			bc.c.Stop()
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for srv.Connected() < n {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d clients connected", srv.Connected(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var tokens chan struct{}
	if rate > 0 {
		tokens = make(chan struct{}, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace(ctx, rate, tokens)
		}()
	}
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sender(ctx, i, cs, tokens)
		}()
	}
	time.Sleep(warm)
	measuring.Store(true)
	start := time.Now()
	cpu0 := cpuTime()
	stopProf := startProfiles()
	time.Sleep(dur)
	stopProf()
	measuring.Store(false)
	elapsed := time.Since(start)
	cpuUsed := cpuTime() - cpu0
	cancel()
	wg.Wait()

	var all []time.Duration
	for _, bc := range cs {
		all = append(all, bc.lats...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))]) / 1e6
	}
	return &result{
		Clients: n, Inflight: inflight, Peers: peers, RateLimit: rate, Seconds: elapsed.Seconds(),
		Delivered: delivered.Load(), MsgsPerSec: float64(delivered.Load()) / elapsed.Seconds(),
		P50Ms: pct(0.50), P99Ms: pct(0.99), MaxMs: pct(1), Undeliv: undeliv.Load(),
		GoMaxProcs: runtime.GOMAXPROCS(0), CPUCores: cpuUsed.Seconds() / elapsed.Seconds(), Server: srv.Stats(),
	}, nil
}

// pace emits rate tokens per second in 1 ms slices.
func pace(ctx context.Context, rate int, tokens chan<- struct{}) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	start := time.Now()
	var issued int
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int(now.Sub(start).Seconds() * float64(rate))
			if debt := cap(tokens); due-issued > debt {
				issued = due - debt // never burst more than one buffer to catch up
			}
			for ; issued < due; issued++ {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var (
	profile, traceFile, stacksFile string
	staticWindow                   bool
)

func startProfiles() func() {
	var stops []func()
	if profile != "" {
		f, err := os.Create(profile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, func() { pprof.StopCPUProfile(); _ = f.Close() })
		}
	}
	if stacksFile != "" {
		t := time.AfterFunc(time.Second, func() {
			if f, err := os.Create(stacksFile); err == nil {
				_ = pprof.Lookup("goroutine").WriteTo(f, 1)
				_ = f.Close()
			}
		})
		stops = append(stops, func() { t.Stop() })
	}
	if traceFile != "" {
		f, err := os.Create(traceFile)
		if err == nil && trace.Start(f) == nil {
			t := time.AfterFunc(time.Second, func() { trace.Stop(); _ = f.Close() })
			stops = append(stops, func() { t.Stop() })
		}
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

func sender(ctx context.Context, i int, cs []*benchClient, tokens <-chan struct{}) {
	me := cs[i]
	for {
		select {
		case me.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if tokens != nil {
			select {
			case <-tokens:
			case <-ctx.Done():
				return
			}
		}
		j := me.peers[rand.IntN(len(me.peers))]
		msg := &signalpb.PeerMessage{Kind: &signalpb.PeerMessage_Candidate{Candidate: &signalpb.Candidate{
			SessionId: uint64(time.Now().UnixNano()),
			Candidate: "candidate:1 1 udp 2130706431 192.0.2.1 51820 typ host",
		}}}
		if err := me.c.Send(ctx, cs[j].c.PublicKey(), msg); err != nil {
			<-me.sem
			if ctx.Err() != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
}
