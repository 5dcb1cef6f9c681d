package rows

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"petrel/management/model"
	"petrel/management/store/internal/codec"
)

// AppendEventSQL builds the events INSERT (account_id, then
// codec.EventColumns) for a placeholder style.
func AppendEventSQL(placeholder func(n int) string) string {
	ph := make([]string, len(codec.EventColumns)+1)
	for i := range ph {
		ph[i] = placeholder(i + 1)
	}
	return "INSERT INTO events (account_id, " + strings.Join(codec.EventColumns, ", ") + ") VALUES (" +
		strings.Join(ph, ", ") + ")"
}

// EventsQuery builds the SELECT for ListEvents: every value of f is a
// parameter (none is spliced into the text). The Action prefix form
// ("peer.") compares the leading characters with substr rather than LIKE,
// which would treat "_" and "%" as wildcards and, on SQLite, ignore case.
func EventsQuery(placeholder func(n int) string, accountID string, f model.EventFilter) (string, []any) {
	args := []any{accountID}
	where := []string{"account_id = " + placeholder(1)}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, placeholder(len(args))))
	}
	if f.Before != 0 {
		add("seq < %s", f.Before)
	}
	if f.Actor != "" {
		add("actor = %s", f.Actor)
	}
	if strings.HasSuffix(f.Action, ".") {
		args = append(args, int64(utf8.RuneCountInString(f.Action)))
		add("substr(action, 1, "+placeholder(len(args))+") = %s", f.Action)
	} else if f.Action != "" {
		add("action = %s", f.Action)
	}
	if f.TargetKind != "" {
		add("target_kind = %s", string(f.TargetKind))
	}
	if f.TargetID != "" {
		add("target_id = %s", f.TargetID)
	}
	if !f.Since.IsZero() {
		add("at >= %s", clampNanos(f.Since))
	}
	if !f.Until.IsZero() {
		add("at <= %s", clampNanos(f.Until))
	}
	q := "SELECT seq, " + strings.Join(codec.EventColumns, ", ") + " FROM events WHERE " +
		strings.Join(where, " AND ") + " ORDER BY seq DESC"
	if f.Limit > 0 {
		args = append(args, int64(f.Limit))
		q += " LIMIT " + placeholder(len(args))
	}
	return q, args
}

// clampNanos is t in unix nanoseconds, saturated at the int64 range (a
// bound beyond it still means "everything before/after").
func clampNanos(t time.Time) int64 {
	switch {
	case t.Year() < 1678:
		return math.MinInt64
	case t.Year() > 2261:
		return math.MaxInt64
	}
	return t.UnixNano()
}

// ArgsQuery runs q with args inside the caller's read snapshot.
type ArgsQuery func(ctx context.Context, q string, args ...any) (Rows, error)

// ListEvents runs EventsQuery through query and decodes the events.
func ListEvents(ctx context.Context, query ArgsQuery, placeholder func(n int) string,
	accountID string, f model.EventFilter) ([]model.Event, error) {
	if f.Limit < 0 || f.Before < 0 {
		return nil, errors.New("list events: negative limit or cursor")
	}
	q, args := EventsQuery(placeholder, accountID, f)
	rs, err := query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rs.Close()
	events := []model.Event{}
	for rs.Next() {
		var r codec.EventRow
		if err := rs.Scan(r.Targets()...); err != nil {
			return nil, fmt.Errorf("scan event: %w", err)
		}
		e, err := codec.DecodeEvent(r)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return events, nil
}
