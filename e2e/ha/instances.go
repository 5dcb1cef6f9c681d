package ha

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// instance is one petrel-server process of the cluster.
type instance struct {
	idx      int
	bin      string
	args     []string
	addr     string // 127.0.0.1:port (gRPC, REST, relay, cluster forwarding)
	dataDir  string
	logPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
	restarts int
}

// freePort asks the kernel for a free TCP (udp false) or UDP port.
func freePort(t testing.TB, udp bool) int {
	t.Helper()
	if udp {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newInstances prepares n instances on the database dsn, advertising
// publicURL (the proxy) to agents. They share the relay secret file (a
// relay token minted by one is valid at every relay) and advertise every
// instance's relay and STUN.
func newInstances(t testing.TB, bin, dir, dsn, publicURL string, n int) []*instance {
	t.Helper()
	ports := make([]int, n)
	stuns := make([]int, n)
	for i := range n {
		ports[i], stuns[i] = freePort(t, false), freePort(t, true)
	}
	secret := filepath.Join(dir, "relay-secret")
	out := make([]*instance, n)
	for i := range n {
		addr := "127.0.0.1:" + strconv.Itoa(ports[i])
		in := &instance{idx: i, bin: bin, addr: addr, dataDir: filepath.Join(dir, fmt.Sprintf("server%d", i)),
			logPath: filepath.Join(dir, fmt.Sprintf("server%d.log", i))}
		in.args = []string{"run", "--ha", "--store", dsn, "--data-dir", in.dataDir,
			"--listen", addr, "--stun-listen", "127.0.0.1:" + strconv.Itoa(stuns[i]),
			"--public-url", publicURL, "--cluster-url", "http://" + addr,
			"--relay-secret-file", secret, "--relay-instance-url", "rel://" + addr,
			"--metrics-listen", "off", "--max-conns-per-source", "-1"}
		for j := range n {
			in.args = append(in.args, "--relay-url", "rel://127.0.0.1:"+strconv.Itoa(ports[j]),
				"--stun-url", "stun:127.0.0.1:"+strconv.Itoa(stuns[j]))
		}
		out[i] = in
	}
	return out
}

// start runs the process (appending to its log) and waits until it
// answers /healthz.
func (in *instance) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "\n==== start %d at %s\n", in.restarts, time.Now().Format(time.RFC3339Nano))
	in.cmd = exec.Command(in.bin, in.args...)
	in.cmd.Stdout, in.cmd.Stderr = logf, logf
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		_ = c.Wait()
		_ = logf.Close()
		close(done)
	}(in.cmd, in.exited)
	in.restarts++
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for ctx.Err() == nil {
		select {
		case <-in.exited:
			t.Fatalf("instance %d exited at start; log %s:\n%s", in.idx, in.logPath, tail(in.logPath, 30))
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+in.addr+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("instance %d did not answer /healthz within a minute; log:\n%s", in.idx, tail(in.logPath, 30))
}

// kill sends SIGKILL and waits for the process to be gone.
func (in *instance) kill() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	_ = in.cmd.Process.Kill()
	<-in.exited
}

// stop asks for a clean stop (SIGTERM), then kills after 20 s.
func (in *instance) stop() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	select {
	case <-in.exited:
		return
	default:
	}
	_ = in.cmd.Process.Signal(os.Interrupt)
	select {
	case <-in.exited:
	case <-time.After(20 * time.Second):
		in.kill()
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
