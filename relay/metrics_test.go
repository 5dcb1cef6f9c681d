package relay_test

import "testing"

// Forwarded frames count their WireGuard payload, headers excluded.
func TestForwardedBytesCounted(t *testing.T) {
	in := startRelay(t, "", nil)
	a, b := startPeer(t, in.url), startPeer(t, in.url)
	waitFor(t, "both connected", func() bool { return a.c.Connected() && b.c.Connected() })
	const msg = "seventeen bytes!!"
	expect(t, a, b, "", msg)
	waitFor(t, "payload bytes of every forwarded frame", func() bool {
		st := in.srv.Stats()
		return st.Forwarded > 0 && st.ForwardedBytes == st.Forwarded*int64(len(msg))
	})
}
