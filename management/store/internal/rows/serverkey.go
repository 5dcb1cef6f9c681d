package rows

import (
	"errors"
	"fmt"

	"petrel/internal/keys"
)

// ServerKeyQuery reads the single server key row.
const ServerKeyQuery = `SELECT private_key FROM server_key WHERE id = 1`

// ServerKey returns the persisted server key, creating it exactly once:
// read runs ServerKeyQuery; when it fails with noRows (the driver's
// sentinel) a fresh candidate goes to insert (which must be INSERT … ON
// CONFLICT DO NOTHING) and reread reads whichever row won.
func ServerKey(noRows error, read func() (string, error), insert func(text string) error, reread func() (string, error)) (keys.Private, error) {
	text, err := read()
	if errors.Is(err, noRows) {
		k, gerr := keys.NewPrivate()
		if gerr != nil {
			return keys.Private{}, fmt.Errorf("generate server key: %w", gerr)
		}
		if err := insert(k.String()); err != nil {
			return keys.Private{}, fmt.Errorf("store server key: %w", err)
		}
		text, err = reread()
	}
	if err != nil {
		return keys.Private{}, fmt.Errorf("read server key: %w", err)
	}
	k, err := keys.ParsePrivate(text)
	if err != nil {
		return keys.Private{}, fmt.Errorf("parse server key: %w", err)
	}
	return k, nil
}
