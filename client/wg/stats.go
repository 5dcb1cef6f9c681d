package wg

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"petrel/internal/keys"
)

// parseStats parses the output of the UAPI "get" operation into per-peer stats.
func parseStats(s string) (map[keys.Public]PeerStats, error) {
	out := make(map[keys.Public]PeerStats)
	var (
		cur    keys.Public
		have   bool
		st     PeerStats
		hsSec  int64
		hsNsec int64
	)
	flush := func() {
		if have {
			if hsSec != 0 || hsNsec != 0 {
				st.LastHandshake = time.Unix(hsSec, hsNsec)
			}
			out[cur] = st
		}
	}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "public_key":
			flush()
			var b []byte
			b, err = hex.DecodeString(v)
			if err == nil && len(b) != keys.Len {
				err = keys.ErrBadKey
			}
			copy(cur[:], b)
			have, st, hsSec, hsNsec = true, PeerStats{}, 0, 0
		case "endpoint":
			st.Endpoint = v
		case "allowed_ip":
			var p netip.Prefix
			if p, err = netip.ParsePrefix(v); err == nil {
				st.AllowedIPs = append(st.AllowedIPs, p)
			}
		case "rx_bytes":
			st.RxBytes, err = strconv.ParseUint(v, 10, 64)
		case "tx_bytes":
			st.TxBytes, err = strconv.ParseUint(v, 10, 64)
		case "last_handshake_time_sec":
			hsSec, err = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			hsNsec, err = strconv.ParseInt(v, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("parse uapi %s: %w", k, err)
		}
	}
	flush()
	return out, nil
}
