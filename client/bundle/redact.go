package bundle

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"

	"petrel/relay/auth"
)

// Redacted replaces every secret a Redactor removes.
const Redacted = "[REDACTED]"

// Patterns of secrets whatever their value: Petrel setup keys and admin
// API tokens (fixed prefixes), relay tokens (a fixed length and a version
// byte), and the value of anything labelled as a
// private key, secret, token, password or setup key in key=value, key:
// value or "key": "value" form (log lines, JSON, config files).
var (
	setupKeyRE = regexp.MustCompile(`psk_[a-z2-7]{8,}`)
	adminTokRE = regexp.MustCompile(`ptok_[a-z2-7]{8,}`)
	relayTokRE = regexp.MustCompile(`[A-Za-z0-9_-]{` + strconv.Itoa(auth.TokenLen) + `,}`)
	labelledRE = regexp.MustCompile(`(?i)("?([a-z_.-]*(?:private[_-]?key|secret|token|password|passwd|setup[_-]?key|api[_-]?key|preshared[_-]?key|psk)[a-z_.-]*)"?\s*[=:]\s*)("(?:[^"\\]|\\.)*"|[^\s,}]+)`)
)

// Redactor removes secrets from text: exact values it was given (and
// their other encodings) and the patterns above.
type Redactor struct {
	exact [][]byte
	count int
}

// AddSecret makes r remove s wherever it appears. A WireGuard key given
// in base64 is also removed in hex and URL-safe base64.
func (r *Redactor) AddSecret(s string) {
	s = strings.TrimSpace(s)
	if len(s) < 8 { // too short to be a secret worth matching (and would mangle text)
		return
	}
	r.exact = append(r.exact, []byte(s))
	if raw, err := base64.StdEncoding.DecodeString(s); err == nil && len(raw) >= 16 {
		r.exact = append(r.exact, []byte(hex.EncodeToString(raw)), []byte(base64.RawURLEncoding.EncodeToString(raw)),
			[]byte(base64.URLEncoding.EncodeToString(raw)), []byte(base64.RawStdEncoding.EncodeToString(raw)))
	}
}

// Count is how many secrets r has removed so far.
func (r *Redactor) Count() int { return r.count }

// Redact returns b with every secret replaced by Redacted.
func (r *Redactor) Redact(b []byte) []byte {
	for _, s := range r.exact {
		if n := bytes.Count(b, s); n > 0 {
			r.count += n
			b = bytes.ReplaceAll(b, s, []byte(Redacted))
		}
	}
	for _, re := range []*regexp.Regexp{setupKeyRE, adminTokRE} {
		b = re.ReplaceAllFunc(b, func([]byte) []byte {
			r.count++
			return []byte(Redacted)
		})
	}
	// Relay tokens: a run of token characters holding one that parses
	// (tried at every offset: the token may touch other such characters).
	b = relayTokRE.ReplaceAllFunc(b, func(m []byte) []byte {
		for i := 0; i+auth.TokenLen <= len(m); i++ {
			if _, err := auth.Parse(string(m[i : i+auth.TokenLen])); err == nil {
				r.count++
				return []byte(Redacted)
			}
		}
		return m
	})
	return labelledRE.ReplaceAllFunc(b, func(m []byte) []byte {
		sub := labelledRE.FindSubmatch(m)
		label, val := sub[2], sub[3]
		if bytes.Contains(val, []byte(Redacted)) || len(bytes.Trim(val, `"`)) == 0 || isHarmless(label, bytes.Trim(val, `"`)) {
			return m
		}
		r.count++
		if val[0] == '"' {
			return append(append([]byte{}, sub[1]...), `"`+Redacted+`"`...)
		}
		return append(append([]byte{}, sub[1]...), Redacted...)
	})
}

// isHarmless says whether a labelled value is clearly not a secret, so it
// stays readable: a boolean or null, or a path given for a *-file/*-path
// label (setup-key-file=/etc/petrel/key). Anything else, numbers included,
// is removed.
func isHarmless(label, v []byte) bool {
	switch strings.ToLower(string(v)) {
	case "true", "false", "null", "none", "[redacted]":
		return true
	}
	l := strings.ToLower(string(label))
	return v[0] == '/' && (strings.HasSuffix(l, "file") || strings.HasSuffix(l, "path") || strings.HasSuffix(l, "dir"))
}
