package host

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// markerLine opens every resolv.conf Petrel writes. A file containing it is
// ours and is never captured as the host's original configuration.
const markerLine = "# Managed by Petrel"

// ReadOriginal parses the resolv.conf at path. Nameservers get port 53;
// IPv6 addresses may carry a zone ("fe80::1%eth0"). Like glibc, the last
// "search" or "domain" line wins, "options" lines accumulate, and lines or
// trailing words starting with '#' or ';' are comments. Unparsable
// nameserver lines are skipped.
func ReadOriginal(path string) (Original, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Original{}, fmt.Errorf("read resolv.conf: %w", err)
	}
	return parseResolvConf(b), nil
}

func parseResolvConf(b []byte) Original {
	var o Original
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		f := fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			a, err := netip.ParseAddr(f[1])
			if err != nil {
				continue
			}
			o.Nameservers = append(o.Nameservers, netip.AddrPortFrom(a.Unmap(), 53))
		case "search":
			o.Search = append([]string(nil), f[1:]...)
		case "domain":
			o.Search = []string{f[1]}
		case "options":
			o.Options = append(o.Options, f[1:]...)
		}
	}
	return o
}

// fields splits a line into words and drops everything from the first word
// that starts a comment.
func fields(line string) []string {
	f := strings.Fields(line)
	for i, w := range f {
		if w[0] == '#' || w[0] == ';' {
			return f[:i]
		}
	}
	return f
}

// isOurs reports whether content was written by Petrel: it carries the
// marker, or it names our resolver (a tool that copied our file and added
// its own header still points the host at us, so it is not an original).
func isOurs(content []byte, ours netip.Addr) bool {
	if bytes.Contains(content, []byte(markerLine)) {
		return true
	}
	if !ours.IsValid() {
		return false
	}
	for _, ns := range parseResolvConf(content).Nameservers {
		if ns.Addr().WithZone("") == ours.WithZone("") {
			return true
		}
	}
	return false
}

// withoutSelf returns o without nameservers equal to ours, so the
// resolver never forwards to itself.
func withoutSelf(o Original, ours netip.Addr) Original {
	out := Original{Search: o.Search, Options: o.Options}
	for _, ns := range o.Nameservers {
		if ns.Addr().WithZone("") != ours.WithZone("") {
			out.Nameservers = append(out.Nameservers, ns)
		}
	}
	return out
}

// render returns the resolv.conf Petrel writes: our nameserver only, our
// search domains before the original ones, the original options.
func render(ns netip.Addr, search []string, orig Original, backup string) []byte {
	var b bytes.Buffer
	b.WriteString(markerLine + ": rewritten while the agent runs, restored when it stops.\n")
	fmt.Fprintf(&b, "# The host's original file is saved in %s.\n", backup)
	fmt.Fprintf(&b, "nameserver %s\n", ns)
	if s := mergeDomains(search, orig.Search); len(s) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(s, " "))
	}
	if len(orig.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(orig.Options, " "))
	}
	return b.Bytes()
}

// mergeDomains returns ours then theirs, each domain once, without the
// trailing dot.
func mergeDomains(ours, theirs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range append(append([]string(nil), ours...), theirs...) {
		d = strings.TrimSuffix(strings.TrimSpace(d), ".")
		if d == "" || seen[strings.ToLower(d)] {
			continue
		}
		seen[strings.ToLower(d)] = true
		out = append(out, d)
	}
	return out
}
