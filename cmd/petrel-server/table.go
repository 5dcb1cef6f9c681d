package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"petrel/internal/printable"
)

// tableOf returns a resourceDef.table: the list answer decoded into T,
// one row of cells per item under header, aligned, each cell escaped (names come from agents and admins).
func tableOf[T any](header []string, row func(T) []string) func(io.Writer, []byte) error {
	return func(w io.Writer, raw []byte) error {
		var items []T
		if err := json.Unmarshal(raw, &items); err != nil {
			return fmt.Errorf("decode response: %w", err)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		for _, it := range items {
			cells := row(it)
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
}

// yesNo renders a flag in a table.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
