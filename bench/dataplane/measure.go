package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"petrel/lab"
)

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 100.0

var pingTimeRE = regexp.MustCompile(`time=([0-9.]+) ms`)

// pingMedian sends n pings from a to dst and returns the median RTT (ms).
func pingMedian(ctx context.Context, a *lab.Host, dst netip.Addr, n int) (float64, error) {
	out, err := a.Run(ctx, "ping", "-n", "-c", fmt.Sprint(n), "-i", "0.05", "-W", "2", dst.String())
	if err != nil {
		return 0, err
	}
	var rtts []float64
	for _, m := range pingTimeRE.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		rtts = append(rtts, v)
	}
	if len(rtts) == 0 {
		return 0, fmt.Errorf("ping %s: no replies", dst)
	}
	return median(rtts), nil
}

// iperfResult is the part of iperf3 -J output the rig reads.
type iperfResult struct {
	End struct {
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// iperf runs one iperf3 client from a to dst for secs seconds with
// streams parallel TCP streams; it returns Gbit/s, bytes received and the
// client's CPU seconds (ip netns exec execs iperf3 in place, so the child's
// rusage is iperf3's).
func iperf(ctx context.Context, a *lab.Host, dst netip.Addr, port, secs, streams int) (gbps, bytes, cpu float64, err error) {
	cmd := a.Command(ctx, "iperf3", "-c", dst.String(), "-p", fmt.Sprint(port),
		"-t", fmt.Sprint(secs), "-P", fmt.Sprint(streams), "-J")
	out, err := cmd.Output()
	var r iperfResult
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		return 0, 0, 0, fmt.Errorf("iperf3 to %s: %v (decode: %v)", dst, err, jerr)
	}
	if r.Error != "" || err != nil {
		return 0, 0, 0, fmt.Errorf("iperf3 to %s: %v %s", dst, err, r.Error)
	}
	cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return r.End.SumReceived.BitsPerSecond / 1e9, r.End.SumReceived.Bytes, cpu, nil
}

// procCPU returns utime+stime of pid in seconds.
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTick, nil
}

// cpuOf sums procCPU over pids.
func cpuOf(pids []int) (float64, error) {
	var s float64
	for _, pid := range pids {
		v, err := procCPU(pid)
		if err != nil {
			return 0, err
		}
		s += v
	}
	return s, nil
}

// maxRSS returns the largest VmRSS among pids in MB (0 without pids).
func maxRSS(pids []int) (float64, error) {
	var m float64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(rest)
				kb, _ := strconv.ParseFloat(f[0], 64)
				m = max(m, kb/1024)
			}
		}
	}
	return m, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
