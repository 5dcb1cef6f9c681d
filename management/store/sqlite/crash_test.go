package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
)

// crashRounds is how many times the child is killed, each time on the
// database the previous rounds left behind; round r kills as
// crashModes[r%len(crashModes)] says.
const crashRounds = 8

// crashModes is the order in which rounds use the kill modes.
var crashModes = []crashMode{killInTx, killInCommit, killAtAck, killAnywhere}

// TestSIGKILLDuringWrites SIGKILLs a process writing to the store
// (TestCrashChild) crashRounds times on the same database, at a random
// moment of a random phase, and checks after each kill that the database
// reopens, passes PRAGMA integrity_check and foreign_key_check, holds every
// batch the child acknowledged, and holds each batch entirely or not at all
// (the account version counts exactly the batches present).
//
// What a process kill can and cannot show. It catches a write acknowledged
// before its commit (killAtAck, killInCommit) and a batch not written as
// one transaction (killAnywhere, killAtAck). It catches a journal mode
// without atomic commit (journal_mode=MEMORY or OFF) when a kill lands
// after SQLite spilled part of a large transaction to the database file or
// inside its commit (killInTx, killInCommit): most runs, not every run. It
// cannot catch synchronous=OFF or NORMAL: the kernel's page cache outlives
// the process, so committed pages reach the disk anyway; only an OS crash
// or power loss would show it. The settings themselves are read back by
// Open (see durablePragmas) and held by TestDurabilityChecked.
func TestSIGKILLDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "petrel.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	done := map[string]int64{} // accounts of earlier rounds and their final versions
	for round := range crashRounds {
		acct := fmt.Sprintf("round-%d", round)
		// Each kill after 1–64 batches, so that rounds end in different
		// phases, WAL checkpoints included.
		k := crashKill{mode: crashModes[round%len(crashModes)], minAcks: 1 + rng.IntN(64), frac: rng.Float64()}
		res := runCrashChild(t, path, acct, k)
		v, ok := checkAfterCrash(t, path, acct, res, done)
		t.Logf("round %d: killed %s; %d batches acknowledged, %d committed", round, res.when, res.acked+1, v)
		if ok {
			done[acct] = v
		}
	}
}

// crashMode is where in the write load a round kills the child.
type crashMode int

const (
	// killInTx: a large batch's statements are done (SQLite may already have
	// spilled pages of it to disk) and its commit has not started.
	killInTx crashMode = iota
	// killInCommit: during a large batch's commit.
	killInCommit
	// killAtAck: as soon as an acknowledgement arrives: the acknowledged
	// batch must be committed already, and the next one has just begun.
	killAtAck
	// killAnywhere: up to 3 ms after an acknowledgement: inside a small
	// batch, between batches, or in a commit still in flight.
	killAnywhere
)

// crashKill says when runCrashChild kills the child.
type crashKill struct {
	mode    crashMode
	minAcks int     // not before this many acknowledgements
	frac    float64 // where in [0, 1) of the mode's span
}

// crashResult is what the child acknowledged before it died.
type crashResult struct {
	created bool   // the account
	acked   int    // the highest acknowledged batch, -1 for none
	when    string // where the kill was aimed, for the log
}

// runCrashChild runs the child on path, SIGKILLs it as k says and reads
// everything it acknowledged before dying.
func runCrashChild(t *testing.T, path, acct string, k crashKill) crashResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDBEnv+"="+path, crashAccountEnv+"="+acct)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A child that stalls is killed too; the acknowledgement count says so.
	stall := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer stall.Stop()
	waited := false
	defer func() { // on a failed check, before the child was killed
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	res := crashResult{acked: -1}
	killed := false
	kill := func(d time.Duration, when string) {
		res.when = when
		time.Sleep(d)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("kill child: %v", err)
		}
		killed = true
	}
	var commitTook time.Duration // the last large batch's commit
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		if err != nil { // EOF: the child is dead (a torn last line is no acknowledgement)
			if !errors.Is(err, io.EOF) {
				t.Errorf("read child output: %v", err)
			}
			break
		}
		f := strings.Fields(line)
		n := -1
		if len(f) > 1 {
			n, _ = strconv.Atoi(f[1])
		}
		ready := !killed && res.acked+1 >= k.minAcks
		switch {
		case len(f) == 1 && f[0] == "account":
			res.created = true
		case len(f) == 2 && f[0] == "commit" && n == res.acked+1:
			switch {
			case ready && k.mode == killInTx:
				kill(0, fmt.Sprintf("before the commit of large batch %d", n))
			case ready && k.mode == killInCommit && commitTook > 0:
				if _, err := in.Write([]byte{1}); err != nil {
					t.Fatalf("go-ahead: %v", err)
				}
				d := time.Duration(k.frac * float64(commitTook))
				kill(d, fmt.Sprintf("%s into the commit of large batch %d (the last took %s)", d, n, commitTook))
			case !killed:
				if _, err := in.Write([]byte{1}); err != nil {
					t.Fatalf("go-ahead: %v", err)
				}
			}
		case len(f) == 3 && f[0] == "ack" && n == res.acked+1:
			res.acked = n
			if n%bigEvery == 0 {
				d, _ := strconv.ParseInt(f[2], 10, 64)
				commitTook = time.Duration(d)
			}
			switch {
			case ready && k.mode == killAtAck:
				kill(0, fmt.Sprintf("at ack %d", n))
			case ready && k.mode == killAnywhere:
				d := time.Duration(k.frac * float64(3*time.Millisecond))
				kill(d, fmt.Sprintf("%s after ack %d", d, n))
			}
		default:
			t.Fatalf("child output %q after ack %d", line, res.acked)
		}
	}
	err = cmd.Wait()
	waited = true
	if !killed {
		t.Fatalf("child ended before being killed (after %d acknowledgements): %v\n%s", res.acked+1, err, stderr.String())
	}
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child exit: %v, want killed\n%s", err, stderr.String())
	}
	return res
}

// checkAfterCrash reopens the database after a kill and checks it; it
// returns the account's version (the number of batches that committed) and
// whether the account exists.
func checkAfterCrash(t *testing.T, path, acct string, res crashResult, done map[string]int64) (int64, bool) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, path, testLog(t))
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	var integrity string
	if err := s.read.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		if len(integrity) > 400 {
			integrity = integrity[:400] + "…"
		}
		t.Fatalf("integrity_check after kill: %q, %v", integrity, err)
	}
	rs, err := s.read.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		t.Fatal(err)
	}
	orphans := rs.Next()
	if err := errors.Join(rs.Err(), rs.Close()); err != nil || orphans {
		t.Fatalf("foreign_key_check after kill: orphans=%v err=%v", orphans, err)
	}
	list, err := s.LoadAccounts(ctx)
	if err != nil {
		t.Fatalf("load after kill: %v", err)
	}
	byID := map[string]*model.Account{}
	for _, a := range list {
		byID[a.ID] = a
	}
	for id, v := range done {
		if a := byID[id]; a == nil || a.Version != v || len(a.Peers) != int(v) {
			t.Fatalf("account %s of an earlier round changed: %+v, want version %d", id, a, v)
		}
	}
	a := byID[acct]
	if a == nil {
		if res.created {
			t.Fatalf("acknowledged account %s missing after kill", acct)
		}
		return 0, false
	}
	// Batches 0..Version-1 complete, nothing of later ones: each batch was
	// one transaction, and the version counts the committed ones.
	v := int(a.Version)
	if res.acked >= v {
		t.Fatalf("batch %d was acknowledged but the account is at version %d (batches 0..%d committed)", res.acked, v, v-1)
	}
	for i := range v + 3 {
		id := strconv.Itoa(i)
		want := i < v
		p, k, g := a.Peers["p"+id] != nil, a.SetupKeys["k"+id] != nil, a.Groups["g"+id] != nil
		if p != want || k != want || g != want {
			t.Fatalf("batch %d (account version %d): peer %v, key %v, group %v; want all %v", i, v, p, k, g, want)
		}
	}
	if len(a.Peers) != v || len(a.SetupKeys) != v || len(a.Groups) != v {
		t.Fatalf("account at version %d holds %d peers, %d keys, %d groups", v, len(a.Peers), len(a.SetupKeys), len(a.Groups))
	}
	if v > 0 {
		last := strconv.Itoa((v - 1) / bigEvery * bigEvery) // the last large batch
		for _, pid := range bigPolicies {
			if p := a.Policies[pid]; p == nil || !reflect.DeepEqual(p, bigPolicy(pid, last)) {
				t.Fatalf("policy %s after kill at version %d is not the one batch %s wrote", pid, v, last)
			}
		}
	}
	// The next rounds need not load this round's large policies again.
	if err := s.Update(ctx, func(tx store.Tx) error {
		for _, pid := range bigPolicies {
			if err := tx.Delete(acct, model.KindPolicy, pid); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("drop large policies: %v", err)
	}
	return int64(v), true
}
