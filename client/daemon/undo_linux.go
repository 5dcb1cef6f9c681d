package daemon

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// platformUndoers returns the undo functions for the host changes the agent
// journals on this platform.
func platformUndoers() map[string]Undoer {
	return map[string]Undoer{
		"link": func(e Entry) error {
			l, err := netlink.LinkByName(e.Name)
			if err != nil {
				var nf netlink.LinkNotFoundError
				if errors.As(err, &nf) {
					return nil
				}
				return fmt.Errorf("find link: %w", err)
			}
			if err := netlink.LinkDel(l); err != nil {
				return fmt.Errorf("delete link: %w", err)
			}
			return nil
		},
	}
}
