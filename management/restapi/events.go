package restapi

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"petrel/management/model"
)

// The audit log: GET /api/events returns the newest events first, at most
// limit of them, as {"events": [...], "next_before": SEQ}. next_before is
// null on the last page; else passing it as ?before= fetches the next
// (older) page with the same filters.

// Event list limits.
const (
	defaultEventLimit = 100
	maxEventLimit     = 1000
)

type eventView struct {
	Seq        int64      `json:"seq"`
	At         *time.Time `json:"at"`
	Actor      string     `json:"actor"` // "user:ID", "admin-token:ID", "system", ...
	ActorEmail string     `json:"actor_email"`
	Action     string     `json:"action"` // e.g. "group.create"
	TargetKind string     `json:"target_kind"`
	TargetID   string     `json:"target_id"`
	Detail     string     `json:"detail"`
}

type eventPage struct {
	Events     []eventView `json:"events"`
	NextBefore *int64      `json:"next_before"`
}

// eventKinds are the target_kind values events carry.
var eventKinds = []model.Kind{model.KindPeer, model.KindGroup, model.KindSetupKey, model.KindPolicy, model.KindRoute,
	model.KindNameserverGroup, model.KindDNSZone, model.KindAdminToken, model.KindUser, model.KindAccessToken}

// decodeEventQuery parses the query of GET /api/events. Unknown or
// repeated parameters are refused, so that a typo does not silently
// widen the answer.
func decodeEventQuery(raw string) (model.EventFilter, error) {
	f := model.EventFilter{Limit: defaultEventLimit}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return f, invalidf("bad query string: %v", err)
	}
	for k, v := range q {
		if len(v) > 1 {
			return f, invalidf("query parameter %q given %d times; give it once", k, len(v))
		}
		val := strings.TrimSpace(v[0])
		switch k {
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > maxEventLimit {
				return f, invalidf("limit %q: want a number from 1 to %d", v[0], maxEventLimit)
			}
			f.Limit = n
		case "before":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 1 {
				return f, invalidf("before %q: want the seq of an event (a positive number, e.g. next_before of the previous page)", v[0])
			}
			f.Before = n
		case "actor":
			f.Actor = val
		case "action":
			f.Action = val
		case "target_kind":
			f.TargetKind = model.Kind(val)
			if !validKind(f.TargetKind) {
				return f, invalidf("target_kind %q: want one of %s", v[0], kindList())
			}
		case "target_id":
			f.TargetID = val
		case "since", "until":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return f, invalidf("%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", k, v[0])
			}
			if k == "since" {
				f.Since = t
			} else {
				f.Until = t
			}
		default:
			return f, invalidf("unknown query parameter %q; known: limit, before, actor, action, target_kind, target_id, since, until", k)
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, invalidf("until (%s) is before since (%s)", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	return f, nil
}

func validKind(k model.Kind) bool { return slices.Contains(eventKinds, k) }

func kindList() string {
	s := make([]string, len(eventKinds))
	for i, k := range eventKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func (s *server) listEvents(c *call) (int, any, error) {
	f, err := decodeEventQuery(c.r.URL.RawQuery)
	if err != nil {
		return 0, nil, err
	}
	limit := f.Limit
	f.Limit = limit + 1 // one more tells whether there is a next page
	evs, err := s.api.ListEvents(c.r.Context(), c.account, f)
	if err != nil {
		return 0, nil, err
	}
	page := eventPage{Events: make([]eventView, 0, min(len(evs), limit))}
	if len(evs) > limit {
		evs = evs[:limit]
		next := evs[limit-1].Seq
		page.NextBefore = &next
	}
	for _, e := range evs {
		page.Events = append(page.Events, eventView{
			Seq: e.Seq, At: optTime(e.At), Actor: e.Actor, ActorEmail: e.ActorEmail, Action: e.Action,
			TargetKind: string(e.TargetKind), TargetID: e.TargetID, Detail: e.Detail,
		})
	}
	return http.StatusOK, page, nil
}
