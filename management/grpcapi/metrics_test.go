package grpcapi

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/proto/managementpb"
)

type observed struct {
	op, kind string
	code     codes.Code
	size     int
}

type recorder struct {
	mu  sync.Mutex
	got []observed
}

func (r *recorder) Login(op string, code codes.Code, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d <= 0 {
		code = codes.Code(999) // a duration must be measured
	}
	r.got = append(r.got, observed{op: op, code: code})
}

func (r *recorder) SyncSent(kind string, size int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, observed{kind: kind, size: size})
}

func (r *recorder) take() []observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

// waitFor takes the observations once there are at least n (or fails
// after a generous deadline: an event that never comes).
func (r *recorder) waitFor(t *testing.T, n int) []observed {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		ready := len(r.got) >= n
		r.mu.Unlock()
		if ready || time.Now().After(deadline) {
			return r.take()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The Observer hears every Login with what it was (a registration, a
// known peer's login, an envelope that did not open) and the status the
// agent got, and every Sync message with its kind and sealed size.
func TestObserverHearsLoginsAndSync(t *testing.T) {
	e := startEnv(t, sqliteBackend(t).Open(t))
	rec := &recorder{}
	e.grpc.SetObserver(rec)
	ctx := mgmttest.Ctx(t)
	k := mgmttest.NewKey(t)

	if _, err := e.client.Login(ctx, k, &managementpb.LoginRequest{SetupKey: "psk_wrong"}); err == nil {
		t.Fatal("login with a wrong setup key succeeded")
	}
	key := e.setupKey(t, management.SetupKeyInput{Reusable: true})
	if _, err := e.client.Login(ctx, k, &managementpb.LoginRequest{SetupKey: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Login(ctx, k, &managementpb.LoginRequest{}); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := managementpb.NewManagementClient(conn).Login(ctx, &managementpb.EncryptedMessage{}); err == nil {
		t.Fatal("empty envelope accepted")
	}
	got := rec.take()
	if len(got) != 4 || got[0].op != OpRegister || got[0].code == codes.OK || got[0].code == 999 ||
		got[1] != (observed{op: OpRegister, code: codes.OK}) || got[2] != (observed{op: OpLogin, code: codes.OK}) ||
		got[3] != (observed{op: OpUnknown, code: codes.InvalidArgument}) {
		t.Fatalf("logins observed: %+v", got)
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = e.client.Sync(sctx, k, &managementpb.SyncRequest{}, func(*managementpb.SyncResponse) error {
		cancel()
		return nil
	})
	// The server observes a message after sending it, so the agent may
	// hold it first: wait for the observation.
	got = rec.waitFor(t, 1)
	if len(got) != 1 || got[0].kind != SyncFull || got[0].size <= 0 {
		t.Fatalf("sync observed: %+v", got)
	}
	e.grpc.SetObserver(nil)
	if _, err := e.client.Login(ctx, k, &managementpb.LoginRequest{}); err != nil || len(rec.take()) != 0 {
		t.Fatalf("after SetObserver(nil): %v", err)
	}
}
