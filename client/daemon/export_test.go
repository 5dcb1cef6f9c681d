package daemon

import "time"

// SetReconnectAttempt shortens one reconnect attempt (tests).
func SetReconnectAttempt(d time.Duration) func() {
	old := reconnectAttempt
	reconnectAttempt = d
	return func() { reconnectAttempt = old }
}
