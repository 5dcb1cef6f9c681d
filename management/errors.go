package management

import (
	"errors"
	"fmt"
	"time"
)

// ErrorKind classifies control-plane errors; it maps to gRPC and HTTP codes.
type ErrorKind int

// Error kinds.
const (
	KindInternal        ErrorKind = iota
	KindInvalid                   // bad input: HTTP 400 / InvalidArgument
	KindNotFound                  // HTTP 404 / NotFound
	KindConflict                  // HTTP 409 / AlreadyExists
	KindUnauthenticated           // HTTP 401 / Unauthenticated
	KindPermission                // HTTP 403 / PermissionDenied
	KindPrecondition              // HTTP 412 / FailedPrecondition (e.g. key expired)
	KindUnavailable               // HTTP 503 / Unavailable
	KindAborted                   // HTTP 409 / Aborted: the stored account changed under this server
	KindExhausted                 // HTTP 429 / ResourceExhausted: rate limited (see Error.RetryAfter)
)

// Error is the control plane's one typed error.
type Error struct {
	Kind ErrorKind
	Msg  string
	Err  error // optional cause
	// RetryAfter is when a rate-limited caller may try again (KindExhausted).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error of the given kind.
func Errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err (KindInternal if it is not an *Error).
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// HTTPStatus maps an error kind to an HTTP status code.
func (k ErrorKind) HTTPStatus() int {
	switch k {
	case KindInvalid:
		return 400
	case KindUnauthenticated:
		return 401
	case KindPermission:
		return 403
	case KindNotFound:
		return 404
	case KindConflict, KindAborted:
		return 409
	case KindPrecondition:
		return 412
	case KindUnavailable:
		return 503
	case KindExhausted:
		return 429
	}
	return 500
}
