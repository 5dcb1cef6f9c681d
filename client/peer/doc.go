// Package peer manages the connection to one remote peer: the offer/answer
// exchange over signal, an ICE agent (pion/ice) sharing the WireGuard socket
// through the Bind's UDP mux, the relay path, and the path state machine
// that moves WireGuard's endpoint for that peer between the relay and the
// direct path.
//
// Session protocol (both sides run the same code):
//   - A Conn owns a local ICE session (random id, ufrag, pwd). On start it
//     sends an Offer with its credentials and home relay instance.
//   - An Offer whose session id differs from the bound remote session means
//     the remote (re)started: if the local session is already bound to
//     another remote session it is restarted; then it binds the offer's
//     session and replies with an Answer. Crossing offers therefore bind
//     both sides without a restart.
//   - An Answer binds the local session if it is still unbound; it never
//     causes a restart (so answers cannot loop).
//   - The side with the larger public key is ICE-controlling.
//
// Path rules: traffic uses the relay as soon as both home relays are known,
// moves to the direct path when ICE selects a pair, and falls back to the
// relay when ICE disconnects or fails; a guard then retries ICE with
// backoff. The reason the peer is relayed is kept for status.
//
// Imported by client/engine. Conn methods are safe for concurrent use; ICE
// and signal callbacks arrive on their own goroutines.
package peer
