//go:build linux

package route

import (
	"fmt"
	"log/slog"
)

// Undoers returns the undo of each journal kind this package records. Each
// needs no other state than the entry, works in the calling thread's
// network namespace, treats "already gone" as success, and is a no-op when
// run twice.
func Undoers() map[string]func(name string, data map[string]string) error {
	return map[string]func(string, map[string]string) error{
		KindRoute:    undoRoute,
		KindRule:     undoRule,
		KindSysctl:   undoSysctl,
		KindNftTable: undoNftTable,
	}
}

func undoRoute(_ string, data map[string]string) error {
	r, err := routeFromData(data)
	if err != nil {
		return err
	}
	o, err := openNL("")
	if err != nil {
		return err
	}
	defer o.close()
	return o.delRoute(r)
}

func undoRule(_ string, data map[string]string) error {
	r, err := ruleFromData(data)
	if err != nil {
		return err
	}
	o, err := openNL("")
	if err != nil {
		return err
	}
	defer o.close()
	return o.delRule(r)
}

// undoSysctl writes back the recorded previous value while the sysctl still
// holds the value we wrote ("value"; older entries without it always write
// prev back): a value someone else set since is theirs and stays. Writing
// it when it is already there (the change was never made, or was undone)
// is a no-op.
func undoSysctl(name string, data map[string]string) error {
	prev, ok := data["prev"]
	if !ok {
		return fmt.Errorf("undo sysctl %s: no previous value recorded", name)
	}
	if !knownSysctl(name) {
		return fmt.Errorf("undo sysctl %s: not a sysctl this package changes", name)
	}
	cur, err := readSysctl(name)
	if err != nil {
		return err
	}
	if !restoreSysctl(cur, prev, data["value"]) {
		if cur != prev {
			slog.Info("sysctl changed by someone else since the agent set it; left alone",
				"component", "route", "key", name, "value", cur, "ours", data["value"], "before", prev)
		}
		return nil
	}
	return writeSysctl(name, prev)
}

func undoNftTable(name string, data map[string]string) error {
	table := data["table"]
	if data["family"] != "inet" || !knownTable(table) {
		return fmt.Errorf("undo nft table %s: not a table this package owns", name)
	}
	c, err := nftConn(-1)
	if err != nil {
		return err
	}
	queueDeleteTable(c, table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("delete nft table %s: %w", table, err)
	}
	return nil
}
