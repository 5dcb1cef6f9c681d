package restapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"petrel/management/model"
)

// MaxBodyBytes is the largest request body accepted (1 MiB).
const MaxBodyBytes = 1 << 20

// maxExpiresIn bounds "expires_in" (ten years).
const maxExpiresIn = 10 * 365 * 24 * time.Hour

// Media types of request bodies.
const (
	mediaJSON       = "application/json"
	mediaMergePatch = "application/merge-patch+json"
)

// readBody checks that the request's Content-Type is one of accept (415
// otherwise) and reads at most MaxBodyBytes of its body (413 beyond).
func readBody(c *call, accept ...string) ([]byte, error) {
	if err := checkMediaType(c.r.Header.Get("Content-Type"), accept); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge,
				msg: fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
		}
		return nil, invalidf("read request body: %v", err)
	}
	return body, nil
}

// checkMediaType answers 415 unless the Content-Type header names one of
// accept (parameters such as charset=utf-8 are allowed).
func checkMediaType(header string, accept []string) error {
	mt, _, err := mime.ParseMediaType(header)
	if err == nil && slices.Contains(accept, strings.ToLower(mt)) {
		return nil
	}
	got := "no Content-Type"
	if header != "" {
		got = fmt.Sprintf("Content-Type %q", header)
	}
	return &apiError{status: http.StatusUnsupportedMediaType, code: codeMediaType,
		msg: fmt.Sprintf("unsupported media type: got %s, send Content-Type: %s", got, strings.Join(accept, " or "))}
}

// decodeJSON decodes exactly one JSON object from body into dst, rejecting
// unknown fields, trailing data and null anywhere (a member is omitted to
// leave it unset). Errors are 400s that say where.
func decodeJSON(body []byte, dst any) error {
	if len(body) > MaxBodyBytes {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge,
			msg: fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return invalidf("request body is empty; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(body, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalidf("malformed JSON: unexpected data after the object at byte offset %d", dec.InputOffset())
	}
	if path, ok := firstNull(body); ok {
		if path == "" {
			return invalidf("request body is null; a JSON object is required")
		}
		return invalidf("%s: null is not accepted (omit the member to leave it unset; an empty list is [])", path)
	}
	return nil
}

// jsonError turns an encoding/json error into a 400 naming the position.
func jsonError(body []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &syn):
		line, col := lineCol(body, syn.Offset)
		return invalidf("malformed JSON at byte offset %d (line %d, column %d): %v", syn.Offset, line, col, syn)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return invalidf("malformed JSON: unexpected end of input at byte offset %d", len(body))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		return invalidf("field %q: expected %s, got JSON %s at byte offset %d", field, typ.Type, typ.Value, typ.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalidf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return invalidf("invalid JSON: %v", err)
}

func lineCol(body []byte, off int64) (line, col int) {
	if off > int64(len(body)) {
		off = int64(len(body))
	}
	if off < 0 {
		off = 0
	}
	before := body[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

// ref is a reference to a peer or group in a request body: a JSON string
// holding an ID or a name, or an object {"id": ...} or {"name": ...} as
// found in responses (so a GET body can be edited and PUT back).
type ref string

func (r *ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return invalidf("reference: %v", err)
		}
		*r = ref(s)
		return nil
	case len(b) > 0 && b[0] == '{':
		var o struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&o); err != nil {
			return invalidf("reference object: %v", err)
		}
		if o.ID != "" {
			*r = ref(o.ID)
		} else {
			*r = ref(o.Name)
		}
		return nil
	}
	return invalidf("a reference must be a string (id or name) or an object {\"id\": ...}, got %.40s", b)
}

// duration is a JSON string like "24h", "90m" or "7d".
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return invalidf("expires_in must be a duration string such as \"24h\" or \"7d\"")
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

// ParseDuration parses an "expires_in" value as the API does: a Go duration
// ("24h", "90m") or whole days ("7d"), not negative, at most ten years; ""
// is zero (never expires). Clients use it to check flags before sending.
func ParseDuration(s string) (time.Duration, error) {
	return parseDuration(s)
}

func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	var v time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok && !strings.ContainsAny(days, "hmsuµn") {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil || n > uint64(maxExpiresIn/(24*time.Hour)) {
			return 0, invalidf("bad duration %q: expected e.g. \"24h\", \"90m\" or \"7d\"", s)
		}
		v = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		v, err = time.ParseDuration(s)
		if err != nil {
			return 0, invalidf("bad duration %q: expected e.g. \"24h\", \"90m\" or \"7d\"", s)
		}
	}
	if v < 0 {
		return 0, invalidf("bad duration %q: must not be negative", s)
	}
	if v > maxExpiresIn {
		return 0, invalidf("bad duration %q: at most %s", s, maxExpiresIn)
	}
	return v, nil
}

// portSpec is "80", "8000-8080" or the JSON number 80.
type portSpec model.PortRange

func (p *portSpec) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] != '"' {
		s = string(b)
	} else if err := json.Unmarshal(b, &s); err != nil {
		return invalidf("port: %v", err)
	}
	r, err := parsePortRange(s)
	if err != nil {
		return err
	}
	*p = portSpec(r)
	return nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, invalidf("bad port %q: expected 1-65535", s)
	}
	return uint16(n), nil
}

func parsePortRange(s string) (model.PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo)
	if err != nil {
		return model.PortRange{}, err
	}
	if !isRange {
		return model.PortRange{Start: a, End: a}, nil
	}
	b, err := parsePort(hi)
	if err != nil {
		return model.PortRange{}, err
	}
	if b < a {
		return model.PortRange{}, invalidf("bad port range %q: end below start", s)
	}
	return model.PortRange{Start: a, End: b}, nil
}

func formatPortRange(r model.PortRange) string {
	if r.Start == r.End {
		return strconv.Itoa(int(r.Start))
	}
	return fmt.Sprintf("%d-%d", r.Start, r.End)
}

func parseProtocol(s string) (model.Protocol, error) {
	switch p := model.Protocol(strings.ToLower(strings.TrimSpace(s))); p {
	case "":
		return model.ProtoAll, nil
	case model.ProtoAll, model.ProtoTCP, model.ProtoUDP, model.ProtoICMP:
		return p, nil
	}
	return "", invalidf("bad protocol %q: expected all, tcp, udp or icmp", s)
}

func parseAction(s string) (model.Action, error) {
	switch a := model.Action(strings.ToLower(strings.TrimSpace(s))); a {
	case "":
		return model.ActionAccept, nil
	case model.ActionAccept, model.ActionDrop:
		return a, nil
	}
	return "", invalidf("bad action %q: expected accept or drop", s)
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func itoa(i int) string { return strconv.Itoa(i) }
