package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"petrel/internal/printable"
	"petrel/management/restapi"
)

// eventJSON is the REST shape of an audit event.
type eventJSON struct {
	Seq        int64      `json:"seq"`
	At         *time.Time `json:"at"`
	Actor      string     `json:"actor"`
	ActorEmail string     `json:"actor_email"`
	Action     string     `json:"action"`
	TargetKind string     `json:"target_kind"`
	TargetID   string     `json:"target_id"`
	Detail     string     `json:"detail"`
}

// eventPageJSON is one answer of GET /api/events.
type eventPageJSON struct {
	Events     []json.RawMessage `json:"events"`
	NextBefore *int64            `json:"next_before"`
}

// maxEventPage is the most events the API returns at once.
const maxEventPage = 1000

// eventFlags are the filters of `events`.
type eventFlags struct {
	clientFlags
	limit                int
	actor, action        string
	targetKind, targetID string
	since, until         string
	asJSON               bool
}

// query turns the filters into the API's query (without limit/before).
// --actor takes an email (resolved to user:ID) or an actor as the log
// shows it; --since and --until take RFC 3339 times or a duration back
// from now ("1h", "7d").
func (f *eventFlags) query(ctx context.Context, c *adminClient, now time.Time) (url.Values, error) {
	q := url.Values{}
	if a := strings.TrimSpace(f.actor); a != "" {
		if strings.Contains(a, "@") && !strings.Contains(a, ":") {
			u, err := c.findUser(ctx, a)
			if err != nil {
				return nil, fmt.Errorf("--actor: %w", err)
			}
			a = "user:" + u.id()
		}
		q.Set("actor", a)
	}
	for k, v := range map[string]string{"action": f.action, "target_kind": f.targetKind, "target_id": f.targetID} {
		if v = strings.TrimSpace(v); v != "" {
			q.Set(k, v)
		}
	}
	for k, v := range map[string]string{"since": f.since, "until": f.until} {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		t, err := parseWhen(v, now)
		if err != nil {
			return nil, usageError{fmt.Errorf("--%s: %w", k, err)}
		}
		q.Set(k, t.UTC().Format(time.RFC3339Nano))
	}
	return q, nil
}

// parseWhen reads an RFC 3339 time, or a duration back from now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := restapi.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration back from now (1h, 7d)", s)
	}
	return now.Add(-d), nil
}

func newEventsCmd() *cobra.Command {
	var f eventFlags
	cmd := &cobra.Command{
		Use:   "events [--limit N] [--actor EMAIL|ACTOR] [--action ACTION] [--since TIME] [--json]",
		Short: "Show the audit log, newest first: who changed what, and when",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.limit < 1 {
				return usageError{fmt.Errorf("--limit %d: want at least 1", f.limit)}
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			q, err := f.query(cmd.Context(), c, time.Now())
			if err != nil {
				return err
			}
			events, err := fetchEvents(cmd.Context(), c, q, f.limit)
			if err != nil {
				return fmt.Errorf("list events: %w", err)
			}
			if f.asJSON {
				raw, err := json.Marshal(events)
				if err != nil {
					return fmt.Errorf("encode events: %w", err)
				}
				return printJSON(cmd.OutOrStdout(), raw)
			}
			return eventTable(cmd.OutOrStdout(), events)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&f.limit, "limit", 100, "show at most N events (pages through the API as needed)")
	fl.StringVar(&f.actor, "actor", "", `who: a user's email, or an actor as shown ("user:ID", "admin-token:ID", "system")`)
	fl.StringVar(&f.action, "action", "", `what: an action ("group.create") or a prefix ending in "." ("peer.")`)
	fl.StringVar(&f.targetKind, "target-kind", "", "kind of object changed: peer, group, setup_key, policy, route, user, ...")
	fl.StringVar(&f.targetID, "target-id", "", "id of the object changed")
	fl.StringVar(&f.since, "since", "", "only events since: an RFC 3339 time or a duration back from now (1h, 7d)")
	fl.StringVar(&f.until, "until", "", "only events until: an RFC 3339 time or a duration back from now")
	fl.BoolVar(&f.asJSON, "json", false, "print the events as the API's JSON (an array, newest first)")
	return cmd
}

// fetchEvents gets up to limit events matching q, newest first, following
// next_before from page to page.
func fetchEvents(ctx context.Context, c *adminClient, q url.Values, limit int) ([]json.RawMessage, error) {
	var out []json.RawMessage
	for len(out) < limit {
		q.Set("limit", strconv.Itoa(min(limit-len(out), maxEventPage)))
		var page eventPageJSON
		if err := c.getJSON(ctx, "/api/events?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		out = append(out, page.Events...)
		if page.NextBefore == nil || len(page.Events) == 0 {
			break
		}
		q.Set("before", strconv.FormatInt(*page.NextBefore, 10))
	}
	if out == nil {
		out = []json.RawMessage{}
	}
	return out, nil
}

// eventTable prints events as a table: time, actor (email when a user),
// action, target and detail.
func eventTable(w io.Writer, events []json.RawMessage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tDETAIL")
	for _, raw := range events {
		var e eventJSON
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("decode event: %w", err)
		}
		at, actor, target := "-", e.Actor, "-"
		if e.At != nil {
			at = e.At.Local().Format(time.RFC3339)
		}
		if e.ActorEmail != "" {
			actor = e.ActorEmail
		}
		if e.TargetKind != "" || e.TargetID != "" {
			target = strings.Trim(e.TargetKind+" "+e.TargetID, " ")
		}
		cells := []string{at, actor, e.Action, target, e.Detail}
		for i, c := range cells {
			if c == "" {
				c = "-"
			}
			cells[i] = printable.Escape(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}
