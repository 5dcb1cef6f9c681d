package main

import (
	"encoding/json"
	"fmt"
	"io"

	"petrel/proto/daemonpb"
)

// upProgressJSON is one line of `petrel up --json`: the progress of the
// connection, one object per change, the last with stage "done" (docs/cli.md).
// Extend it; never rename or remove fields.
type upProgressJSON struct {
	Stage               string `json:"stage"`
	Message             string `json:"message"`
	ManagementConnected bool   `json:"management_connected"`
	SignalConnected     bool   `json:"signal_connected"`
	RelayConnected      bool   `json:"relay_connected"`
	PeersConnected      int32  `json:"peers_connected"`
	PeersTotal          int32  `json:"peers_total"`
}

// upPrinter writes the progress of `up`: a line per change, or with --json
// one JSON object per line.
type upPrinter struct {
	w    io.Writer
	json bool
}

func (p upPrinter) progress(u *daemonpb.UpProgress) {
	if !p.json {
		fmt.Fprintln(p.w, progressLine(u))
		return
	}
	b, _ := json.Marshal(upProgressJSON{Stage: u.GetStage(), Message: u.GetMessage(),
		ManagementConnected: u.GetManagementConnected(), SignalConnected: u.GetSignalConnected(),
		RelayConnected: u.GetRelayConnected(), PeersConnected: u.GetPeersConnected(), PeersTotal: u.GetPeersTotal()})
	fmt.Fprintln(p.w, string(b))
}

// note writes a human line (nothing with --json, whose stdout is JSON only).
func (p upPrinter) note(s string) {
	if !p.json {
		fmt.Fprintln(p.w, s)
	}
}
