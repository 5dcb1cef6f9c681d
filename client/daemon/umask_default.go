//go:build !linux

package daemon

func umask(m int) int { return m }
