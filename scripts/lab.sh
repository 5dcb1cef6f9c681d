#!/usr/bin/env bash
# Run the lab tier: network-namespace tests (build tag `lab`) of client/route,
# client/dns/host, lab and e2e.
# Needs root. Installs the tools it needs, removes leftovers of dead runs,
# then runs the tests one package at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/lab.sh: the lab tests need root (network namespaces, nftables); run: sudo bash scripts/lab.sh" >&2
	exit 2
fi

need=()
for pair in nft:nftables ip:iproute2 iperf3:iperf3 conntrack:conntrack ping:iputils-ping tc:iproute2 iptables:iptables; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
	echo "scripts/lab.sh: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${need[@]}" >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
fi

GO=${GO:-go}
"$GO" run ./lab/cmd/lab cleanup
"$GO" test -tags lab -count=1 -p 1 -timeout 30m ./client/route/ ./client/dns/host/ ./lab/... ./e2e/ -v "$@"
