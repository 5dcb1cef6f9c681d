package sqlite

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"petrel/management/model"
	"petrel/management/store"
)

// The child process of TestSIGKILLDuringWrites is this test binary run with
// crashDBEnv set (the usual re-exec pattern); crashAccountEnv names the
// account it writes to.
const (
	crashDBEnv      = "PETREL_TEST_CRASH_DB"
	crashAccountEnv = "PETREL_TEST_CRASH_ACCOUNT"
)

// TestCrashChild is the child process of TestSIGKILLDuringWrites, not a test
// of its own: without crashDBEnv it returns at once.
func TestCrashChild(t *testing.T) {
	path, acct := os.Getenv(crashDBEnv), os.Getenv(crashAccountEnv)
	if path == "" {
		return
	}
	if err := crashChild(path, acct, bufio.NewReader(os.Stdin)); err != nil {
		fmt.Fprintln(os.Stderr, "crash child:", err)
		os.Exit(3)
	}
}

// crashChild creates acct, then commits batch 0, 1, 2, … until it is
// killed; batch i is crashBatch(i), written in one Update that first moves
// the account version from i to i+1. It prints, each line in one write(2)
// (so a kill leaves a whole line or none):
//
//	account      the account's Update returned nil
//	commit N     large batch N's statements are done and its commit is next;
//	             the child waits for one byte on stdin (the parent's go-ahead)
//	ack N D      batch N's Update returned nil; its commit took D ns
//
// Only "account" and "ack" acknowledge a write, and only after the store
// call returned.
func crashChild(path, acct string, goAhead io.ByteReader) error {
	ctx := context.Background()
	s, err := Open(ctx, path, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		return err
	}
	a := model.NewAccount(acct, netip.MustParsePrefix("100.64.0.0/16"), time.Unix(1700000000, 0).UTC())
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.CreateAccount(a) }); err != nil {
		return err
	}
	if _, err := fmt.Println("account"); err != nil {
		return err
	}
	for i := 0; ; i++ {
		var commitStart time.Time
		err := s.Update(ctx, func(tx store.Tx) error {
			if err := tx.BumpVersion(acct, int64(i)); err != nil {
				return err
			}
			for _, o := range crashBatch(acct, i) {
				if err := tx.Put(acct, o); err != nil {
					return err
				}
			}
			if i%bigEvery == 0 {
				if _, err := fmt.Printf("commit %d\n", i); err != nil {
					return err
				}
				if _, err := goAhead.ReadByte(); err != nil {
					return fmt.Errorf("wait for go-ahead: %w", err)
				}
			}
			commitStart = time.Now()
			return nil
		})
		if err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		if _, err := fmt.Printf("ack %d %d\n", i, time.Since(commitStart)); err != nil {
			return err
		}
	}
}

// bigEvery: batch i with i%bigEvery == 0 is a large batch.
const bigEvery = 32

// bigPolicies are the IDs of the policies a large batch rewrites.
var bigPolicies = []string{"big-a", "big-b"}

// crashBatch is batch i: a peer, a setup key and a group holding the peer,
// all or none of which must be in the store. Every bigEvery-th batch also
// rewrites two large policies (1000 rules, each with 25 source and 25
// destination groups and 8 port ranges: some 1.6 MB each, together more
// than SQLite's page cache), so some transactions spill pages to disk before
// they commit, and their commits are long and span many pages.
func crashBatch(acct string, i int) []model.Object {
	id := strconv.Itoa(i)
	h := sha256.Sum256([]byte(acct + "/" + id))
	objs := []model.Object{
		&model.Peer{ID: "p" + id, Name: "host-" + id, DNSLabel: "host-" + id, PublicKey: acct + "-pub-" + id,
			IP:   netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}),
			Meta: model.PeerMeta{Hostname: "host-" + id, OS: "linux"}},
		&model.SetupKey{ID: "k" + id, Name: "key-" + id, KeyHash: h[:], Reusable: true},
		&model.Group{ID: "g" + id, Name: "group-" + id, PeerIDs: []string{"p" + id}},
	}
	if i%bigEvery == 0 {
		for _, pid := range bigPolicies {
			objs = append(objs, bigPolicy(pid, id))
		}
	}
	return objs
}

// bigPolicy is large policy pid as batch id writes it: the same rules each
// time (built once, so the child spends a large batch writing, not building
// it), a new name.
func bigPolicy(pid, id string) *model.Policy {
	return &model.Policy{ID: pid, Name: pid + "-" + id, Enabled: true, Rules: bigRules()}
}

var bigRules = sync.OnceValue(func() []model.PolicyRule {
	groups := func(side string) []string {
		g := make([]string, 25)
		for n := range g {
			g[n] = fmt.Sprintf("%s-group-%016d", side, n)
		}
		return g
	}
	ports := make([]model.PortRange, 8)
	for n := range ports {
		ports[n] = model.PortRange{Start: uint16(1000 * n), End: uint16(1000*n + 99)}
	}
	rules := make([]model.PolicyRule, 1000)
	for r := range rules {
		rules[r] = model.PolicyRule{ID: fmt.Sprintf("rule-%d", r), Sources: groups("src"),
			Destinations: groups("dst"), Protocol: model.ProtoTCP, Ports: ports, Action: model.ActionAccept}
	}
	return rules
})
