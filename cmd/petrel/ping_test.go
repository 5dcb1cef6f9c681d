package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"petrel/internal/cmdline"
	"petrel/proto/daemonpb"
)

func TestPingSummary(t *testing.T) {
	for _, tc := range []struct {
		name   string
		probes []pingProbe
		want   pingSummary
		text   string
	}{
		{"all direct", []pingProbe{{1, 0.5, "p2p", ""}, {2, 1.5, "p2p", ""}, {3, 1, "p2p", ""}},
			pingSummary{Sent: 3, Received: 3, RttMinMs: 0.5, RttAvgMs: 1, RttMaxMs: 1.5, Paths: map[string]int{"p2p": 3}},
			"3 sent, 3 received, 0% loss\nrtt min/avg/max = 0.50/1.00/1.50 ms, path p2p\n"},
		{"mixed with loss", []pingProbe{{1, 2, "relay", ""}, {2, 0, "", "timeout"}, {3, 1, "p2p", ""}},
			pingSummary{Sent: 3, Received: 2, LossPercent: 33.3, RttMinMs: 1, RttAvgMs: 1.5, RttMaxMs: 2, Paths: map[string]int{"p2p": 1, "relay": 1}},
			"3 sent, 2 received, 33.3% loss\nrtt min/avg/max = 1.00/1.50/2.00 ms, path p2p 1, relay 1\n"},
		{"nothing", []pingProbe{{1, 0, "", "timeout"}},
			pingSummary{Sent: 1, LossPercent: 100, Paths: map[string]int{}},
			"1 sent, 0 received, 100% loss\n"},
	} {
		got := summarize(tc.probes)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		var b bytes.Buffer
		printPingSummary(&b, cmdline.Palette{}, pingResult{Peer: "h", Summary: got})
		if want := "\n--- h ping statistics ---\n" + tc.text; b.String() != want {
			t.Errorf("%s: printed %q, want %q", tc.name, b.String(), want)
		}
	}
}

// TestPingOutput runs the real binary against a fake daemon: per-probe
// lines and the summary, or one JSON document; exit 1 when nothing
// answered; peer names complete from the daemon's status.
func TestPingOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent binary")
	}
	bin := buildAgent(t)
	f := &fakeDaemon{status: twoPeers(), replies: []*daemonpb.PingReply{
		{Ip: "100.64.0.2", Seq: 1, RttMs: 0.25, Path: "p2p"},
		{Ip: "100.64.0.2", Seq: 2, Error: "no reply within 5s"},
		{Ip: "100.64.0.2", Seq: 3, RttMs: 0.75, Path: "relay"},
	}}
	sock := f.serve(t)
	out, code := run(t, bin, "ping", "alpha", "--socket", sock)
	for _, want := range []string{
		"reply from 100.64.0.2 (alpha) seq=1 time=0.25 ms via p2p\n",
		"100.64.0.2 seq=2: no reply within 5s\n",
		"--- alpha ping statistics ---\n3 sent, 2 received, 33.3% loss\nrtt min/avg/max = 0.25/0.50/0.75 ms, path p2p 1, relay 1\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("exit %d, output:\n%s\nwant %q", code, out, want)
		}
	}
	if strings.ContainsRune(out, 0x1b) {
		t.Fatalf("ANSI escape in output to a pipe: %q", out)
	}

	out, code = run(t, bin, "ping", "alpha", "--json", "--socket", sock)
	var res pingResult
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	want := pingResult{Peer: "alpha", IP: "100.64.0.2", Probes: []pingProbe{{1, 0.25, "p2p", ""}, {2, 0, "", "no reply within 5s"}, {3, 0.75, "relay", ""}},
		Summary: pingSummary{Sent: 3, Received: 2, LossPercent: 33.3, RttMinMs: 0.25, RttAvgMs: 0.5, RttMaxMs: 0.75, Paths: map[string]int{"p2p": 1, "relay": 1}}}
	if !reflect.DeepEqual(res, want) {
		t.Fatalf("--json: %+v\nwant %+v", res, want)
	}

	f.setReplies(&daemonpb.PingReply{Ip: "100.64.0.3", Seq: 1, Error: "no reply within 5s"})
	out, code = run(t, bin, "ping", "beta", "-c", "1", "--socket", sock)
	if code != 1 || !strings.Contains(out, "1 sent, 0 received, 100% loss") || !strings.Contains(out, "no reply from beta") {
		t.Fatalf("no reply: exit %d, output:\n%s", code, out)
	}

	out, code = run(t, bin, "__complete", "ping", "--socket", sock, "")
	for _, want := range []string{"alpha\t100.64.0.2 connected", "beta.petrel.internal\t100.64.0.3 connected", ":4\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("completion: exit %d, output:\n%s\nwant %q", code, out, want)
		}
	}
	out, _ = run(t, bin, "__complete", "ping", "--socket", sock, "be")
	if strings.Contains(out, "alpha") || !strings.Contains(out, "beta\t") {
		t.Fatalf("completion of \"be\":\n%s", out)
	}
	// Without a daemon: no candidates, no error, no file names.
	out, code = run(t, bin, "__complete", "ping", "--socket", sock+".none", "")
	if code != 0 || strings.TrimSpace(out) != ":4\nCompletion ended with directive: ShellCompDirectiveNoFileComp" {
		t.Fatalf("completion without a daemon: exit %d, output:\n%q", code, out)
	}
}
