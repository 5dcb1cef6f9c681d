package e2e

import (
	"encoding/json"
	"testing"
)

func TestStatusDecode(t *testing.T) {
	raw := `{"state":"connected","relay":{"home_url":"rel://eu-1.relay.lab.test:8080","connected":true},
"ip":"100.64.0.1/16","peers":[{"name":"b","ip":"100.64.0.2","status":"connected","path":"relay",
"relay_url":"rel://us-1.relay.lab.test:8080","relay_reason":"ice-timeout"}]}`
	var s Status
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	if s.OverlayIP() != "100.64.0.1" || s.Relay.HomeURL != RelayInstanceURL(0) {
		t.Errorf("status %+v", s)
	}
	p := s.Peer("b")
	if p == nil || p.Path != "relay" || p.RelayURL != RelayInstanceURL(1) || p.RelayReason != "ice-timeout" {
		t.Errorf("peer b %+v", p)
	}
	if s.Peer("c") != nil {
		t.Error("unknown peer found")
	}
}
