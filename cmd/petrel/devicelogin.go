package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"petrel/client/oidcdevice"
	"petrel/internal/qrterm"
)

// errSignInCancelled is what deviceLogin returns when its context is
// cancelled (Ctrl-C) while the user has not yet approved.
var errSignInCancelled = errors.New("sign-in cancelled")

// deviceLogin signs a person in with the device flow at cfg's provider
// and returns the ID token for LoginRequest.jwt. It prints where to go
// and the code to enter (escaped: both come from the network), a QR code
// of the link when out is a terminal (tty), and a line with the time the
// code has left: rewritten in place every second on a terminal, printed
// once otherwise. The token itself is never printed.
func deviceLogin(ctx context.Context, out io.Writer, tty bool, cfg oidcdevice.Config) (idToken string, err error) {
	now, sleep := cfg.Now, cfg.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	// The flow sleeps between polls; on a terminal the sleep is cut into
	// seconds so the waiting line can count down.
	var line *waitLine
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		if line == nil || !line.tty {
			return sleep(ctx, d)
		}
		for d > 0 {
			step := min(d, time.Second)
			if err := sleep(ctx, step); err != nil {
				return err
			}
			d -= step
			line.draw()
		}
		return nil
	}

	a, err := oidcdevice.Start(ctx, cfg)
	if err != nil {
		return "", signInError(ctx, err)
	}
	fmt.Fprint(out, a.Instructions())
	if tty {
		link := a.VerificationURIComplete
		if link == "" {
			link = a.VerificationURI
		}
		// oidcdevice bounds the URI so it fits a QR code; were it not to,
		// the text above is enough to sign in.
		_ = qrterm.Render(out, link)
	}
	line = &waitLine{out: out, tty: tty, expires: a.Expires, now: now}
	line.draw()
	tok, err := a.Wait(ctx)
	line.end()
	if err != nil {
		return "", signInError(ctx, err)
	}
	return tok.IDToken, nil
}

// signInError turns a cancellation by the caller into errSignInCancelled.
func signInError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) && errors.Is(err, context.Canceled) {
		return errSignInCancelled
	}
	return err
}

// waitLine is the "waiting" line under the instructions.
type waitLine struct {
	out     io.Writer
	tty     bool
	expires time.Time // zero: the provider gave no lifetime
	now     func() time.Time
}

// draw prints the line: on a terminal over the previous one (carriage
// return, erase line), elsewhere with its newline (deviceLogin draws it
// once there).
func (l *waitLine) draw() {
	text := "Waiting for the sign-in to be approved"
	if !l.expires.IsZero() {
		left := max(l.expires.Sub(l.now()).Round(time.Second), 0)
		text += fmt.Sprintf(" (the code expires in %s)", left)
	}
	if l.tty {
		fmt.Fprintf(l.out, "\r\x1b[K%s...", text)
	} else {
		fmt.Fprintf(l.out, "%s...\n", text)
	}
}

// end finishes the line on a terminal, so what follows starts on its own.
func (l *waitLine) end() {
	if l.tty {
		fmt.Fprintln(l.out)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
