package ui

import (
	"cmp"
	"net/http"
)

// oneChange is a change to one object made from a button on a list page
// (delete, revoke, block): an optional confirmation page, the service
// call, then POST/redirect/GET to the list with a flash message, or the
// list again with the service's error.
type oneChange struct {
	// confirm, when set, is a confirmation page shown first: the posted
	// form is read and the change is made only when it carries
	// confirm=yes (the page's button posts confirm.Fields with it).
	confirm *confirmDeleteData
	// title is the confirmation page's <title>; confirm.Title when empty.
	title string
	// apply makes the change and says what it did, for the flash.
	apply func() (msg string, err error)
	// back is the page redirected to after the change.
	back string
	// fail shows the list page with err (its status from err's kind).
	fail func(err error) error
}

// change runs c for rq.
func (h *Handler) change(rq *req, c oneChange) error {
	if c.confirm != nil {
		if err := parseForm(rq); err != nil {
			return c.fail(err)
		}
		if rq.r.PostForm.Get("confirm") != "yes" {
			h.render(rq, http.StatusOK, "confirmdelete", cmp.Or(c.title, c.confirm.Title), *c.confirm)
			return nil
		}
	}
	msg, err := c.apply()
	if err != nil {
		return c.fail(err)
	}
	return h.done(rq, c.back, msg)
}

// failOn is a oneChange.fail that shows list page name (title, data
// computed when it fails) with the error as a flash.
func (h *Handler) failOn(rq *req, name, title string, data func() any) func(error) error {
	return func(err error) error {
		status, fl := errFlash(err)
		h.render(rq, status, name, title, data(), fl)
		return nil
	}
}

// confirmDeleteData is the confirmation page of a single delete: the
// form posts back to Action with confirm=yes and Fields.
type confirmDeleteData struct {
	Title  string
	Items  []string // what is deleted, already through display
	Note   string
	Action string
	Fields []field // hidden fields besides confirm
	Cancel string
}

type field struct{ Name, Value string }
