//go:build !linux

package daemon

// HostUndoers returns the undo functions for the host changes the agent
// journals on this platform (none outside Linux yet).
func HostUndoers() map[string]Undoer { return map[string]Undoer{} }
