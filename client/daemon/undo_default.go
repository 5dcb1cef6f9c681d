//go:build !linux

package daemon

// platformUndoers returns the undo functions for the host changes the agent
// journals on this platform (none outside Linux yet).
func platformUndoers() map[string]Undoer { return map[string]Undoer{} }
