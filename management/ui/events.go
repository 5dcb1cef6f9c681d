package ui

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"petrel/management/model"
)

// eventsPerPage is the audit page's page size.
const eventsPerPage = 50

// eventKinds are the target kinds audit events carry.
var eventKinds = []model.Kind{model.KindPeer, model.KindGroup, model.KindSetupKey, model.KindPolicy, model.KindRoute,
	model.KindNameserverGroup, model.KindDNSZone, model.KindAdminToken, model.KindUser, model.KindAccessToken}

type eventRow struct {
	Seq                                      int64
	At                                       time.Time
	Actor, Email, Action, Kind, Target, Text string
}

type eventsData struct {
	Actor, Action, Target string
	Kinds                 []option
	Events                []eventRow
	NextURL               string
	FirstURL              string // back to the newest page, when paged
}

// eventFilter reads the audit page's query; unknown values are errors.
func eventFilter(q url.Values) (model.EventFilter, error) {
	f := model.EventFilter{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		TargetKind: model.Kind(q.Get("kind")), TargetID: strings.TrimSpace(q.Get("target")), Limit: eventsPerPage + 1}
	for _, s := range []string{f.Actor, f.Action, f.TargetID} {
		if len(s) > 200 {
			return f, badInput("filter text too long (at most 200 bytes)")
		}
	}
	if f.TargetKind != "" && !slices.Contains(eventKinds, f.TargetKind) {
		return f, badInput("kind %q is not a kind of audit event", f.TargetKind)
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return f, badInput("before %q: want an event number", v)
		}
		f.Before = n
	}
	return f, nil
}

func (h *Handler) events(rq *req) error {
	q := rq.r.URL.Query()
	d := eventsData{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target")}
	for _, k := range eventKinds {
		d.Kinds = append(d.Kinds, option{Value: string(k), Label: string(k), Selected: string(k) == q.Get("kind")})
	}
	f, err := eventFilter(q)
	if err != nil {
		status, fl := errFlash(err)
		h.render(rq, status, "events", "Audit events", d, fl)
		return nil
	}
	evs, err := h.svc.ListEvents(rq.ctx(), rq.acct.ID, f)
	if err != nil {
		status, fl := errFlash(err)
		h.render(rq, status, "events", "Audit events", d, fl)
		return nil
	}
	keep := url.Values{}
	for _, k := range []string{"actor", "action", "kind", "target"} {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	if len(evs) > eventsPerPage {
		evs = evs[:eventsPerPage]
		next := url.Values{}
		for k, v := range keep {
			next[k] = v
		}
		next.Set("before", strconv.FormatInt(evs[len(evs)-1].Seq, 10))
		d.NextURL = "/ui/events?" + next.Encode()
	}
	if f.Before != 0 {
		d.FirstURL = "/ui/events?" + keep.Encode()
	}
	for _, e := range evs {
		d.Events = append(d.Events, eventRow{Seq: e.Seq, At: e.At, Actor: display(e.Actor), Email: display(e.ActorEmail),
			Action: display(e.Action), Kind: string(e.TargetKind), Target: display(e.TargetID), Text: display(e.Detail)})
	}
	h.render(rq, http.StatusOK, "events", "Audit events", d)
	return nil
}
