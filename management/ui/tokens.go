package ui

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"petrel/management"
	"petrel/management/model"
)

// The tokens page: the account's admin tokens (owner rights; only owners
// create and delete them, as the service enforces) and, for a user signed
// in with a personal access token, that user's access tokens. A new
// token's plain text is in the response that created it only: it is in no
// URL, log or later page (the service keeps only its hash).

type adminTokenRow struct {
	ID, Name string
	Created  time.Time
	Current  bool // the token this session signed in with
}

type accessTokenRow struct {
	ID, Name, Prefix string
	Expired, Current bool
	Created, Expires time.Time
	User             string // the owner's email (the every-user list)
}

type tokensData struct {
	Admin []adminTokenRow
	Owner bool // may create and delete admin tokens
	// User is set when signed in as a user, who has access tokens.
	User   bool
	Access []accessTokenRow
	// Others are the other users' access tokens, which admins may revoke
	// (the service refuses those of users above the caller's role).
	Others []accessTokenRow
	// NewToken is the plain token just created, shown once;
	// NewTokenKind is "admin token" or "access token".
	NewToken, NewTokenName, NewTokenKind string
	// Expiry is the new access token form's default; MustExpire, when
	// set, is when this session's credential ends (a token made with it
	// must expire by then).
	Expiry     string
	MustExpire time.Time
}

func (h *Handler) tokensData(rq *req) tokensData {
	d := tokensData{Owner: rq.p.Role == model.RoleOwner, User: rq.p.UserID != "", Expiry: "90d", MustExpire: rq.p.ExpiresAt}
	if !d.MustExpire.IsZero() {
		switch left := d.MustExpire.Sub(h.now()); {
		case left >= 24*time.Hour:
			d.Expiry = fmt.Sprintf("%dd", int(left/(24*time.Hour)))
		default:
			d.Expiry = fmt.Sprintf("%dh", max(1, int(left/time.Hour)))
		}
	}
	for _, t := range rq.acct.AdminTokens {
		d.Admin = append(d.Admin, adminTokenRow{ID: t.ID, Name: display(t.Name), Created: t.CreatedAt,
			Current: rq.p.Via == "admin-token" && rq.p.TokenID == t.ID})
	}
	slices.SortFunc(d.Admin, func(a, b adminTokenRow) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	now := h.now()
	for _, t := range rq.acct.AccessTokens {
		row := accessTokenRow{ID: t.ID, Name: display(t.Name), Prefix: display(t.Prefix),
			Expired: !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt), Current: rq.p.Via == "access-token" && rq.p.TokenID == t.ID,
			Created: t.CreatedAt, Expires: t.ExpiresAt}
		if d.User && t.UserID == rq.p.UserID {
			d.Access = append(d.Access, row)
			continue
		}
		row.User = t.UserID + " (deleted)"
		if u := rq.acct.Users[t.UserID]; u != nil {
			row.User = display(u.Email)
		}
		d.Others = append(d.Others, row)
	}
	for _, l := range [][]accessTokenRow{d.Access, d.Others} {
		slices.SortFunc(l, func(a, b accessTokenRow) int {
			return cmp.Or(cmp.Compare(a.User, b.User), a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
		})
	}
	return d
}

func (h *Handler) tokens(rq *req) error {
	h.render(rq, http.StatusOK, "tokens", "Tokens", h.tokensData(rq))
	return nil
}

func (h *Handler) tokensFail(rq *req) func(error) error {
	return h.failOn(rq, "tokens", "Tokens", func() any { return h.tokensData(rq) })
}

// showNewToken renders the tokens page with a token just created; the
// account is read again so that the list holds it.
func (h *Handler) showNewToken(rq *req, kind, name, plain string) error {
	if a, err := h.svc.Snapshot(rq.acct.ID); err == nil {
		rq.acct = a
	}
	d := h.tokensData(rq)
	d.NewToken, d.NewTokenName, d.NewTokenKind = plain, display(name), kind
	h.render(rq, http.StatusCreated, "tokens", "Tokens", d)
	return nil
}

// createAdminToken creates an admin token (the service allows owners
// only) and shows it once.
func (h *Handler) createAdminToken(rq *req) error {
	fail := h.tokensFail(rq)
	if err := parseForm(rq); err != nil {
		return fail(err)
	}
	name := strings.TrimSpace(rq.r.PostForm.Get("name"))
	if name == "" {
		return fail(badInput("name is required"))
	}
	plain, err := h.svc.CreateAdminToken(rq.ctx(), rq.acct.ID, name)
	if err != nil {
		return fail(err)
	}
	return h.showNewToken(rq, "admin token", name, plain)
}

// deleteAdminToken deletes an admin token after a confirmation page.
func (h *Handler) deleteAdminToken(rq *req) error {
	fail := h.tokensFail(rq)
	t := rq.acct.AdminTokens[rq.r.PathValue("id")]
	if t == nil {
		return fail(notFound("admin token %q not found", rq.r.PathValue("id")))
	}
	name := display(t.Name)
	note := "Scripts and sessions using this token lose access at once."
	if rq.p.Via == "admin-token" && rq.p.TokenID == t.ID {
		note += " You are signed in with it: you will be signed out."
	}
	return h.change(rq, oneChange{back: "/ui/tokens", fail: fail,
		confirm: &confirmDeleteData{Title: "Delete admin token " + name + "?",
			Items: []string{name + " (created " + fmtTime(t.CreatedAt) + ")"}, Note: note,
			Action: "/ui/tokens/admin/" + t.ID + "/delete", Cancel: "/ui/tokens"},
		apply: func() (string, error) {
			_, err := h.svc.DeleteAdminToken(rq.ctx(), rq.acct.ID, t.ID)
			return "Deleted admin token " + name + ".", err
		}})
}

// createAccessToken creates a personal access token for the signed-in
// user and shows it once.
func (h *Handler) createAccessToken(rq *req) error {
	fail := h.tokensFail(rq)
	if rq.p.UserID == "" {
		return fail(badInput("personal access tokens belong to users: sign in with a user's token to create one"))
	}
	if err := parseForm(rq); err != nil {
		return fail(err)
	}
	in := management.AccessTokenInput{Name: strings.TrimSpace(rq.r.PostForm.Get("name"))}
	if in.Name == "" {
		return fail(badInput("name is required"))
	}
	var err error
	if in.ExpiresIn, err = parseExpiry(rq.r.PostForm.Get("expires_in")); err != nil {
		return fail(err)
	}
	t, plain, err := h.svc.CreateAccessToken(rq.ctx(), rq.acct.ID, rq.p.UserID, in)
	if err != nil {
		return fail(err)
	}
	return h.showNewToken(rq, "access token", t.Name, plain)
}

// deleteAccessToken revokes one of the signed-in user's access tokens
// after a confirmation page.
func (h *Handler) deleteAccessToken(rq *req) error {
	fail := h.tokensFail(rq)
	t := rq.acct.AccessTokens[rq.r.PathValue("id")]
	if t == nil || rq.p.UserID == "" || t.UserID != rq.p.UserID {
		return fail(notFound("access token %q not found", rq.r.PathValue("id")))
	}
	name := display(t.Name)
	note := "Scripts and sessions using this token lose access at once."
	if rq.p.Via == "access-token" && rq.p.TokenID == t.ID {
		note += " You are signed in with it: you will be signed out."
	}
	return h.change(rq, oneChange{back: "/ui/tokens", fail: fail,
		confirm: &confirmDeleteData{Title: "Delete access token " + name + "?",
			Items: []string{name + " (" + display(t.Prefix) + "…, created " + fmtTime(t.CreatedAt) + ")"}, Note: note,
			Action: "/ui/tokens/access/" + t.ID + "/delete", Cancel: "/ui/tokens"},
		apply: func() (string, error) {
			return "Deleted access token " + name + ".", h.svc.RevokeAccessToken(rq.ctx(), rq.acct.ID, rq.p.UserID, t.ID)
		}})
}

// revokeUserToken revokes another user's access token after a
// confirmation page (admins; the service refuses a user of a higher role).
func (h *Handler) revokeUserToken(rq *req) error {
	fail := h.tokensFail(rq)
	t := rq.acct.AccessTokens[rq.r.PathValue("id")]
	if t == nil {
		return fail(notFound("access token %q not found", rq.r.PathValue("id")))
	}
	name, owner := display(t.Name), t.UserID
	if u := rq.acct.Users[t.UserID]; u != nil {
		owner = display(u.Email)
	}
	return h.change(rq, oneChange{back: "/ui/tokens", fail: fail,
		confirm: &confirmDeleteData{Title: "Revoke access token " + name + " of " + owner + "?",
			Items:  []string{name + " (" + display(t.Prefix) + "…, created " + fmtTime(t.CreatedAt) + ")"},
			Note:   "Scripts and sessions using this token lose access at once; the user keeps their other tokens.",
			Action: "/ui/tokens/users/" + t.ID + "/revoke", Cancel: "/ui/tokens"},
		apply: func() (string, error) {
			return "Revoked access token " + name + " of " + owner + ".", h.svc.RevokeAccessToken(rq.ctx(), rq.acct.ID, t.UserID, t.ID)
		}})
}
