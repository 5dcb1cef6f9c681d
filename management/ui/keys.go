package ui

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"petrel/management"
	"petrel/management/model"
)

type keyRow struct {
	ID, Name, Prefix, State string
	Reusable, Ephemeral     bool
	UsageLimit, UsedTimes   int
	Expires, Created, Used  time.Time
	AutoGroups              []string
}

type keysData struct {
	Keys   []keyRow
	Groups []option
	// NewKey is the plain key just created: shown once, on this response
	// only (it is not stored anywhere the dashboard could show it again).
	NewKey     string
	NewKeyName string
}

// keyState is "valid", "revoked", "expired" or "exhausted".
func keyState(k *model.SetupKey, now time.Time) string {
	switch {
	case k.Revoked:
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	case !k.Reusable && k.UsedTimes >= 1, k.UsageLimit > 0 && k.UsedTimes >= k.UsageLimit:
		return "exhausted"
	}
	return "valid"
}

func (h *Handler) keysData(rq *req) keysData {
	now := h.now()
	d := keysData{Groups: groupOptions(rq.acct)}
	for _, k := range rq.acct.SetupKeys {
		r := keyRow{ID: k.ID, Name: display(k.Name), Prefix: k.KeyPrefix, State: keyState(k, now), Reusable: k.Reusable,
			Ephemeral: k.Ephemeral, UsageLimit: k.UsageLimit, UsedTimes: k.UsedTimes, Expires: k.ExpiresAt,
			Created: k.CreatedAt, Used: k.LastUsed}
		for _, g := range k.AutoGroups {
			if grp := rq.acct.Groups[g]; grp != nil {
				r.AutoGroups = append(r.AutoGroups, display(grp.Name))
			}
		}
		d.Keys = append(d.Keys, r)
	}
	slices.SortFunc(d.Keys, func(a, b keyRow) int {
		return cmp.Or(b.Created.Compare(a.Created), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return d
}

func (h *Handler) setupKeys(rq *req) error {
	h.render(rq, http.StatusOK, "keys", "Setup keys", h.keysData(rq))
	return nil
}

// parseExpiry reads "never"/"" or a duration such as 30d, 12h, 90m.
func parseExpiry(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" || s == "never" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 3650 {
			return 0, badInput("expires in %q: want whole days from 1 to 3650, e.g. 30d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute {
		return 0, badInput("expires in %q: want a duration of at least a minute (30d, 12h, 90m) or never", s)
	}
	return d, nil
}

// setupKeyInput decodes the create form.
func setupKeyInput(rq *req) (management.SetupKeyInput, error) {
	rq.r.Body = http.MaxBytesReader(rq.w, rq.r.Body, maxFormBytes)
	if err := rq.r.ParseForm(); err != nil {
		return management.SetupKeyInput{}, badInput("unreadable form: %v", err)
	}
	f := rq.r.PostForm
	in := management.SetupKeyInput{Name: strings.TrimSpace(f.Get("name")), Reusable: f.Get("reusable") == "on",
		Ephemeral: f.Get("ephemeral") == "on"}
	if in.Name == "" {
		return in, badInput("name is required")
	}
	if v := strings.TrimSpace(f.Get("usage_limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return in, badInput("usage limit %q: want a whole number, 0 for unlimited", v)
		}
		if !in.Reusable && n > 1 {
			return in, badInput("usage limit %d needs a reusable key (a one-off key is used once)", n)
		}
		in.UsageLimit = n
	}
	var err error
	if in.ExpiresIn, err = parseExpiry(f.Get("expires_in")); err != nil {
		return in, err
	}
	for _, g := range f["auto_groups"] {
		if rq.acct.Groups[g] == nil {
			return in, badInput("group %q not found", g)
		}
		if !slices.Contains(in.AutoGroups, g) {
			in.AutoGroups = append(in.AutoGroups, g)
		}
	}
	return in, nil
}

func (h *Handler) createSetupKey(rq *req) error {
	in, err := setupKeyInput(rq)
	if err == nil {
		var k *model.SetupKey
		var plain string
		if k, plain, err = h.svc.CreateSetupKey(rq.ctx(), rq.acct.ID, in); err == nil {
			rq.acct.SetupKeys[k.ID] = k
			d := h.keysData(rq)
			d.NewKey, d.NewKeyName = plain, display(k.Name)
			h.render(rq, http.StatusCreated, "keys", "Setup keys", d)
			return nil
		}
	}
	status, fl := errFlash(err)
	h.render(rq, status, "keys", "Setup keys", h.keysData(rq), fl)
	return nil
}

// revokeSetupKey revokes a key at once (no confirmation: a revoked key
// stays listed).
func (h *Handler) revokeSetupKey(rq *req) error {
	return h.change(rq, oneChange{back: "/ui/setup-keys", fail: h.failOn(rq, "keys", "Setup keys", func() any { return h.keysData(rq) }),
		apply: func() (string, error) {
			k, err := h.svc.RevokeSetupKey(rq.ctx(), rq.acct.ID, rq.r.PathValue("id"))
			if err != nil {
				return "", err
			}
			return "Revoked setup key " + display(k.Name) + ".", nil
		}})
}
