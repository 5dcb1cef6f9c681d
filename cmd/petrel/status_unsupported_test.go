package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"petrel/proto/daemonpb"
)

// status --json carries the unsupported features as a list ([] when none:
// part of the stable contract), and the table shows each one.
func TestStatusUnsupported(t *testing.T) {
	msg := "routes: 2 routes to install; policy routing is not supported on this platform (darwin)"
	st := &daemonpb.StatusResponse{State: "connected",
		Unsupported: []*daemonpb.UnsupportedFeature{{Feature: "routes", Message: msg}}}
	var buf bytes.Buffer
	if err := writeJSON(&buf, toJSON(st)); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Unsupported []map[string]string `json:"unsupported"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Unsupported) != 1 || got.Unsupported[0]["feature"] != "routes" || got.Unsupported[0]["message"] != msg {
		t.Errorf("unsupported = %v\n%s", got.Unsupported, buf.String())
	}

	buf.Reset()
	if err := writeJSON(&buf, toJSON(&daemonpb.StatusResponse{State: "connected"})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"unsupported": []`) {
		t.Errorf("no unsupported features: want \"unsupported\": [], got\n%s", buf.String())
	}

	buf.Reset()
	printStatus(&buf, st)
	if !strings.Contains(buf.String(), "Unsupported: "+msg+"\n") {
		t.Errorf("table lacks the unsupported feature:\n%s", buf.String())
	}
}
