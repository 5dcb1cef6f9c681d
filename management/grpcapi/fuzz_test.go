package grpcapi

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"petrel/internal/seal"
	"petrel/management"
	"petrel/management/internal/mgmttest"
	"petrel/proto/managementpb"
)

// fakeStream is the server side of a Sync stream for the fuzz target.
type fakeStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent int
}

func (f *fakeStream) Context() context.Context                  { return f.ctx }
func (f *fakeStream) Send(*managementpb.EncryptedMessage) error { f.sent++; return nil }

// FuzzEnvelope feeds arbitrary envelopes into the Login and Sync decode
// paths: mode 0 uses the bytes as they are; mode 1 seals body correctly
// from a fixed (unregistered) agent key, so arbitrary plaintext reaches the
// request decoder and the service. Nothing may panic and no input may change
// the account (the fuzzer cannot know the setup key).
func FuzzEnvelope(f *testing.F) {
	e := startEnv(f, sqliteBackend(f).Open(f))
	plain := e.setupKey(f, management.SetupKeyInput{Reusable: true})
	srv := New(e.svc, e.svc.ServerKey(), testLog(f))
	server := e.svc.ServerKey().Public()
	agent := mgmttest.NewKey(f)
	agentPub := agent.Public()

	login, _ := proto.Marshal(&managementpb.LoginRequest{SetupKey: "psk_guess", Hostname: "fuzz", DnsLabels: []string{"a", "b"}})
	sealed, _ := seal.Seal(login, server, agent)
	f.Add(agentPub[:], sealed, int32(1), uint8(0))
	f.Add(agentPub[:], login, int32(1), uint8(1))
	f.Add(agentPub[:], sealed[:len(sealed)-3], int32(0), uint8(0))
	f.Add([]byte{1, 2, 3}, []byte{}, int32(-1), uint8(0))
	f.Add(agentPub[:], []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, int32(1), uint8(1))

	f.Fuzz(func(t *testing.T, wgKey, body []byte, version int32, mode uint8) {
		if mode%2 == 1 {
			b, err := seal.Seal(body, server, agent)
			if err != nil {
				t.Fatal(err)
			}
			wgKey, body = agentPub[:], b
		}
		msg := &managementpb.EncryptedMessage{WgPublicKey: wgKey, Body: body, Version: version}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, _ = srv.Login(ctx, msg)
		fs := &fakeStream{ctx: ctx}
		_ = srv.Sync(msg, fs)
		if fs.sent != 0 {
			t.Fatalf("sync to an unregistered key sent %d messages", fs.sent)
		}
		snap, err := e.svc.Snapshot(e.acct)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Peers) != 0 {
			t.Fatalf("input registered a peer")
		}
		for _, k := range snap.SetupKeys {
			if k.UsedTimes != 0 {
				t.Fatal("input consumed a setup key use")
			}
		}
	})
	_ = plain
}
