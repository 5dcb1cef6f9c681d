#!/usr/bin/env bash
# Reference data-plane rig: raw veth, reference wireguard-go, Petrel's data
# plane alone (wgpair) and the whole agent with its packet filter on and off
# (petrel-agent, petrel-agent-nofw: a lab control plane is started for them),
# alternating rounds, medians written to docs/bench/lab.md.
# Needs root, iperf3 and ping. Usage: bash bench/dataplane/run.sh [-rounds N] [-secs S] [-systems a,b] [-bridge]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/dataplane/run.sh: needs root (network namespaces, TUN)" >&2
	exit 2
fi
for t in iperf3 ping; do
	command -v "$t" >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q iperf3 iputils-ping >/dev/null; break; }
done
exec ${GO:-go} run ./bench/dataplane -out docs/bench/lab.md "$@"
