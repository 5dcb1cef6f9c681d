// Command relaybench measures relayed throughput and added latency through
// the Petrel relay and through a TURN server (coturn), over loopback, with
// the same packet size and the same pacing for both. bench/relay/run.sh
// starts the servers and calls it; see docs/bench/relay.md.
//
//	relaybench -mode server -listen 127.0.0.1:18080 -secret-file F   # Petrel relay process
//	relaybench -mode petrel -relay rel://127.0.0.1:18080 -secret-file F -server-pid PID -pairs 10
//	relaybench -mode turn -turn 127.0.0.1:13478 -server-pid PID -pairs 10
//	relaybench -mode direct -pairs 1                                    # UDP baseline RTT
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"petrel/relay"
	"petrel/relay/auth"
)

type options struct {
	mode, listen, relayURL, turnAddr, secretFile string
	pairs, size, window, pings                   int
	duration                                     time.Duration
	serverPID                                    int
	cpuProfile                                   string
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", "petrel", "server | petrel | turn | direct")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:18080", "server mode: listen address")
	flag.StringVar(&o.relayURL, "relay", "rel://127.0.0.1:18080", "petrel mode: relay URL")
	flag.StringVar(&o.turnAddr, "turn", "127.0.0.1:13478", "turn mode: TURN server address")
	flag.StringVar(&o.secretFile, "secret-file", "/tmp/petrel-relay-bench.secret", "relay secret file")
	flag.IntVar(&o.pairs, "pairs", 1, "concurrent sender/receiver pairs")
	flag.IntVar(&o.size, "size", 1280, "packet size in bytes")
	flag.IntVar(&o.window, "window", 64, "packets in flight per pair during the throughput phase")
	flag.IntVar(&o.pings, "pings", 2000, "round trips per pair in the latency phase")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "throughput phase length")
	flag.IntVar(&o.serverPID, "server-pid", 0, "relay server pid for CPU accounting")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "server mode: write a CPU profile here")
	flag.Parse()

	var err error
	switch o.mode {
	case "server":
		err = runServer(o)
	case "petrel", "turn", "direct":
		err = runBench(o)
	default:
		err = fmt.Errorf("unknown mode %q", o.mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "relaybench:", err)
		os.Exit(1)
	}
}

func runServer(o options) error {
	secret, err := auth.LoadOrCreateSecret(o.secretFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := relay.NewServer(relay.Config{InstanceURL: "rel://" + ln.Addr().String(), Secret: secret, Logger: log})
	if err != nil {
		return err
	}
	if err := s.StartOn(ln); err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println("ready", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Stop()
	st := s.Stats()
	fmt.Fprintf(os.Stderr, "relay stats: forwarded=%d dropped=%d\n", st.Forwarded, st.Dropped)
	return nil
}

// pair is one sender (A) and receiver (B) connected through the relay under
// test. The harness installs onA/onB before start.
type pair struct {
	sendAB, sendBA func([]byte) error
	close          func()

	recvB  atomic.Int64  // packets received by B
	hiSeq  atomic.Int64  // highest throughput sequence number B has seen
	wake   chan struct{} // poked on every packet B receives
	echo   atomic.Bool   // B answers every packet back to A
	replyC chan int64    // send timestamps of echoes received by A
}

func newPairState() *pair {
	return &pair{replyC: make(chan int64, 16), wake: make(chan struct{}, 1)}
}

// seqMark tags throughput packets (byte 8), whose first 8 bytes carry a
// sequence number; latency packets carry a timestamp there instead.
const seqMark = 'T'

// onB and onA are the receive handlers every transport calls.
func (p *pair) onB(pkt []byte) {
	p.recvB.Add(1)
	if len(pkt) >= 9 && pkt[8] == seqMark {
		// One reader goroutine per B, so load-then-store is enough.
		if seq := int64(binary.BigEndian.Uint64(pkt)); seq > p.hiSeq.Load() {
			p.hiSeq.Store(seq)
		}
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	if p.echo.Load() {
		p.sendBA(pkt)
	}
}

func (p *pair) onA(pkt []byte) {
	if len(pkt) >= 8 {
		select {
		case p.replyC <- int64(binary.BigEndian.Uint64(pkt)):
		default:
		}
	}
}

type result struct {
	mode             string
	pairs            int
	mbps             float64
	lossPct          float64
	p50, p99         time.Duration
	serverCores      float64 // CPU cores used by the server during the throughput phase
	mbpsPerCore      float64
	rttSamples, sent int64
}

func runBench(o options) error {
	ps := make([]*pair, o.pairs)
	for i := range ps {
		p := newPairState()
		var err error
		switch o.mode {
		case "petrel":
			err = setupPetrel(o, p)
		case "turn":
			err = setupTURN(o, p)
		case "direct":
			err = setupDirect(p)
		}
		if err != nil {
			return fmt.Errorf("set up pair %d: %w", i, err)
		}
		defer p.close()
		ps[i] = p
	}
	epoch := time.Now()
	r := result{mode: o.mode, pairs: o.pairs}

	// Latency: sequential echoes per pair, all pairs concurrently.
	var mu sync.Mutex
	var rtts []time.Duration
	var wg sync.WaitGroup
	for _, p := range ps {
		p.echo.Store(true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, o.size)
			local := make([]time.Duration, 0, o.pings)
			for range o.pings {
				ts := int64(time.Since(epoch))
				binary.BigEndian.PutUint64(buf, uint64(ts))
				if p.sendAB(buf) != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				timeout := time.After(time.Second)
			wait:
				for {
					select {
					case got := <-p.replyC:
						if got == ts {
							local = append(local, time.Since(epoch)-time.Duration(ts))
							break wait
						}
					case <-timeout:
						break wait
					}
				}
			}
			mu.Lock()
			rtts = append(rtts, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, p := range ps {
		p.echo.Store(false)
	}
	if len(rtts) == 0 {
		return fmt.Errorf("no round trips completed")
	}
	slices.Sort(rtts)
	r.rttSamples = int64(len(rtts))
	r.p50 = rtts[len(rtts)/2]
	r.p99 = rtts[len(rtts)*99/100]

	if o.mode != "direct" {
		if err := throughput(o, ps, &r); err != nil {
			return err
		}
	}
	fmt.Printf("mode=%s pairs=%d mbps=%.1f loss_pct=%.2f rtt_p50_us=%.1f rtt_p99_us=%.1f server_cores=%.3f mbps_per_core=%.1f rtt_samples=%d\n",
		r.mode, r.pairs, r.mbps, r.lossPct, us(r.p50), us(r.p99), r.serverCores, r.mbpsPerCore, r.rttSamples)
	return nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// throughput runs windowed senders on every pair for o.duration and measures
// what B receives and what the server process spent.
func throughput(o options, ps []*pair, r *result) error {
	stop := make(chan struct{})
	var sent atomic.Int64
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, o.size)
			buf[8] = seqMark
			var n, forgiven int64
			stall := time.NewTimer(time.Hour)
			defer stall.Stop()
			for {
				select {
				case <-stop:
					sent.Add(n)
					return
				default:
				}
				// In flight = sent minus the highest sequence B has seen, so
				// a lost UDP packet below it does not shrink the window.
				if n-max(p.hiSeq.Load(), forgiven) >= int64(o.window) {
					// Window full: wait for B; a 50 ms stall means the
					// tail of the window was lost and is forgiven.
					stall.Reset(50 * time.Millisecond)
					select {
					case <-p.wake:
					case <-stall.C:
						forgiven = n
					case <-stop:
					}
					continue
				}
				binary.BigEndian.PutUint64(buf, uint64(n+1))
				if p.sendAB(buf) == nil {
					n++
				} else {
					runtime.Gosched()
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // warm up
	cpu0, _ := procCPU(o.serverPID)
	var recv0 int64
	for _, p := range ps {
		recv0 += p.recvB.Load()
	}
	t0 := time.Now()
	time.Sleep(o.duration)
	var recv1 int64
	for _, p := range ps {
		recv1 += p.recvB.Load()
	}
	el := time.Since(t0)
	cpu1, err := procCPU(o.serverPID)
	close(stop)
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // let packets in flight land before counting loss
	r.sent = sent.Load()
	r.mbps = float64(recv1-recv0) * float64(o.size) * 8 / el.Seconds() / 1e6
	var total int64
	for _, p := range ps {
		total += p.recvB.Load()
	}
	if r.sent > 0 {
		r.lossPct = 100 * float64(max(r.sent-total, 0)) / float64(r.sent)
	}
	if err == nil && o.serverPID > 0 {
		r.serverCores = (cpu1 - cpu0).Seconds() / el.Seconds()
		if r.serverCores > 0 {
			r.mbpsPerCore = r.mbps / r.serverCores
		}
	}
	return nil
}

// procCPU returns utime+stime of pid (all threads) from /proc.
func procCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no pid")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the ")" that ends the command name; utime and stime are
	// fields 14 and 15 (1-based) of the whole line.
	i := slices.Index(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	var state string
	var f [12]int64
	_, err = fmt.Sscan(string(b[i+1:]), &state, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10], &f[11])
	if err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	ticks := f[10] + f[11] // utime, stime in clock ticks (USER_HZ = 100 on Linux)
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
