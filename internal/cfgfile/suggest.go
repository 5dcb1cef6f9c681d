package cfgfile

import "strings"

// closest returns the name nearest to key if it is near enough to be a
// slip (a typo, "_" for "-", a leading "--", a capital), else "".
func closest(key string, names []string) string {
	k := strings.ToLower(strings.TrimLeft(strings.ReplaceAll(key, "_", "-"), "-"))
	best, bestD := "", 3 // at most two edits
	if len(k) < 6 {
		bestD = 2 // at most one edit in a short name
	}
	for _, n := range names {
		if d := distance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein edit distance of a and b (bytes).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
