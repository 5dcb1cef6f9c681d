package oidcdevice

import (
	"strings"
	"testing"

	"petrel/internal/printable"
)

// FuzzDecode feeds answers from the network through the decoding and the
// checks of both endpoints' answers: nothing panics, and every error is
// safe to print on a terminal.
func FuzzDecode(f *testing.F) {
	f.Add(200, `{"device_code":"d","user_code":"u","verification_uri":"https://x/d","expires_in":"600","interval":5}`)
	f.Add(200, `{"id_token":"a.b.c","access_token":"t","expires_in":3600}`)
	f.Add(400, `{"error":"slow_down","error_description":"\u001b[2J"}`)
	f.Add(503, `{"error":"temporarily_unavailable"}`)
	f.Add(200, `{"verification_uri":"javascript:alert(1)","device_code":"d","user_code":"u"}`)
	f.Add(302, "<html>\x1b]0;title\x07")
	f.Fuzz(func(t *testing.T, status int, body string) {
		var d deviceAnswer
		err := decode(status, []byte(body), &d)
		if err == nil {
			err = d.check()
		}
		if err != nil && !printable.Safe(err.Error()) {
			t.Fatalf("unsafe device answer error %q", err)
		}
		var tok tokenAnswer
		if err := decode(status, []byte(body), &tok); err != nil {
			if !printable.Safe(err.Error()) || len(err.Error()) > 4*maxText*6+200 {
				t.Fatalf("unsafe or long token answer error %q", err)
			}
			if len(tok.IDToken) >= 16 && strings.Contains(err.Error(), tok.IDToken) {
				t.Fatalf("error %q shows the ID token", err)
			}
		}
	})
}
