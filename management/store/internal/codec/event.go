package codec

import (
	"encoding/json"
	"errors"
	"fmt"

	"petrel/management/model"
)

// eventDoc is the JSON document of an events row: the fields no filter
// needs.
type eventDoc struct {
	ActorEmail string `json:"actor_email,omitempty"`
	Detail     string `json:"detail,omitempty"`
}

// EventRow is one audit event as stored; Seq is assigned by the database.
type EventRow struct {
	Seq        int64
	At         int64 // unix nanoseconds
	Actor      string
	Action     string
	TargetKind string
	TargetID   string
	Data       []byte // eventDoc
}

// EventColumns lists the events columns after account_id that EventRow
// Values writes (seq is assigned by the database).
var EventColumns = []string{"at", "actor", "action", "target_kind", "target_id", "data"}

// EncodeEvent turns an event into its row; the event needs a time and an
// action.
func EncodeEvent(e model.Event) (EventRow, error) {
	if e.At.IsZero() || e.Action == "" {
		return EventRow{}, errors.New("encode event: no time or action")
	}
	if err := CheckTime(e.At); err != nil {
		return EventRow{}, fmt.Errorf("encode event %s: %w", e.Action, err)
	}
	data, err := json.Marshal(eventDoc{e.ActorEmail, e.Detail})
	if err != nil {
		return EventRow{}, fmt.Errorf("encode event %s: %w", e.Action, err)
	}
	return EventRow{At: e.At.UnixNano(), Actor: e.Actor, Action: e.Action,
		TargetKind: string(e.TargetKind), TargetID: e.TargetID, Data: data}, nil
}

// Values returns the row's values in EventColumns order.
func (r *EventRow) Values() []any {
	return []any{r.At, r.Actor, r.Action, r.TargetKind, r.TargetID, string(r.Data)}
}

// Targets returns pointers for scanning "seq" then EventColumns.
func (r *EventRow) Targets() []any {
	return []any{&r.Seq, &r.At, &r.Actor, &r.Action, &r.TargetKind, &r.TargetID, &r.Data}
}

// DecodeEvent turns a row back into an event (time in UTC).
func DecodeEvent(r EventRow) (model.Event, error) {
	var d eventDoc
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return model.Event{}, fmt.Errorf("decode event %d: %w", r.Seq, err)
	}
	return model.Event{Seq: r.Seq, At: FromNanos(&r.At), Actor: r.Actor, ActorEmail: d.ActorEmail,
		Action: r.Action, TargetKind: model.Kind(r.TargetKind), TargetID: r.TargetID, Detail: d.Detail}, nil
}
