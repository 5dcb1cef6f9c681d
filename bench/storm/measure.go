package main

import (
	"bufio"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// procStats is one sample of a process: goroutines, Go heap, resident
// memory and CPU time so far.
type procStats struct {
	Goroutines int    `json:"goroutines"`
	HeapLive   uint64 `json:"heap_live_bytes"` // HeapAlloc; live heap when sampled after a GC
	HeapSys    uint64 `json:"heap_sys_bytes"`
	RSS        uint64 `json:"rss_bytes"`      // VmRSS
	PeakRSS    uint64 `json:"peak_rss_bytes"` // VmHWM
	CPU        int64  `json:"cpu_ns"`         // user + system
	GC         bool   `json:"after_gc"`
}

// sampleProc samples this process; with gc it first collects garbage
// twice so HeapLive is the live heap.
func sampleProc(gc bool) procStats {
	if gc {
		runtime.GC()
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := procStats{Goroutines: runtime.NumGoroutine(), HeapLive: ms.HeapAlloc, HeapSys: ms.HeapSys, GC: gc}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		st.CPU = ru.Utime.Nano() + ru.Stime.Nano()
	}
	st.RSS, st.PeakRSS = readRSS()
	return st
}

// readRSS reads VmRSS and VmHWM from /proc/self/status (0 elsewhere).
func readRSS() (rss, peak uint64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	kb := func(s string) uint64 {
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(s), " kB"), 10, 64)
		return n << 10
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			rss = kb(v)
		} else if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			peak = kb(v)
		}
	}
	return rss, peak
}

// loadAvg returns the 1-, 5- and 15-minute load averages ("" if unknown).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// hist is a latency histogram with logarithmic buckets 2% wide, from 1 µs
// to about 20 minutes. Memory is fixed and recording is lock-free, so a
// long run records every sample without growing the heap; quantiles are
// accurate to one bucket (2%).
type hist struct {
	buckets [histBuckets]atomic.Uint64
	n       atomic.Uint64
	max     atomic.Int64
}

const (
	histGrowth  = 1.02
	histBuckets = 1060 // 1.02^1059 µs ≈ 21 min
)

var logGrowth = math.Log(histGrowth)

func (h *hist) add(d time.Duration) {
	i := 0
	if us := float64(d) / float64(time.Microsecond); us >= 1 {
		i = min(int(math.Log(us)/logGrowth)+1, histBuckets-1)
	}
	h.buckets[i].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantile returns the upper bound of the bucket holding the q-quantile
// (never above the largest sample).
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(n)))
	want = max(want, 1)
	var seen uint64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= want {
			up := time.Microsecond
			if i > 0 {
				up = time.Duration(math.Pow(histGrowth, float64(i)) * float64(time.Microsecond))
			}
			return min(up, time.Duration(h.max.Load()))
		}
	}
	return time.Duration(h.max.Load())
}

// latSummary is what the report shows of a histogram.
type latSummary struct {
	N   uint64        `json:"n"`
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

func (h *hist) summary() latSummary {
	return latSummary{N: h.n.Load(), P50: h.quantile(0.50), P99: h.quantile(0.99), Max: time.Duration(h.max.Load())}
}
