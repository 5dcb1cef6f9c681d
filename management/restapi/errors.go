package restapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"petrel/management"
	"petrel/management/store"
)

// Error codes in JSON error bodies.
const (
	codeInvalid         = "invalid_argument"
	codeNotFound        = "not_found"
	codeConflict        = "already_exists"
	codeAborted         = "aborted"
	codeUnauthenticated = "unauthenticated"
	codePermission      = "permission_denied"
	codePrecondition    = "failed_precondition"
	codeUnavailable     = "unavailable"
	codeInternal        = "internal"
	codeTooLarge        = "payload_too_large"
	codeMethod          = "method_not_allowed"
	codeMediaType       = "unsupported_media_type"
)

// apiError is an error with the HTTP status and code it is answered with.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func invalidf(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeInvalid, msg: fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) *apiError {
	return &apiError{status: http.StatusNotFound, code: codeNotFound, msg: fmt.Sprintf(format, args...)}
}

// toAPIError classifies err. Internal errors keep their text out of the
// response (the caller logs it); everything else is answered verbatim.
func toAPIError(err error) (e *apiError, internal bool) {
	if errors.As(err, &e) {
		return e, false
	}
	if errors.Is(err, store.ErrStale) {
		// Another writer changed the account in the store since this server
		// loaded it (the service wraps store.ErrStale as an internal error).
		return &apiError{status: http.StatusConflict, code: codeAborted, msg: err.Error() +
			"; nothing was written: this server's copy of the account is out of date, restart petrel-server to reload it"}, false
	}
	var me *management.Error
	if errors.As(err, &me) {
		k := me.Kind
		e = &apiError{status: k.HTTPStatus(), msg: me.Error()}
		switch k {
		case management.KindInvalid:
			e.code = codeInvalid
		case management.KindNotFound:
			e.code = codeNotFound
		case management.KindConflict:
			e.code = codeConflict
		case management.KindUnauthenticated:
			e.code = codeUnauthenticated
		case management.KindPermission:
			e.code = codePermission
		case management.KindPrecondition:
			e.code = codePrecondition
		case management.KindUnavailable:
			e.code = codeUnavailable
		case management.KindAborted:
			e.code = codeAborted
		case management.KindExhausted:
			e.code = codeRateLimited
		default:
			return &apiError{status: http.StatusInternalServerError, code: codeInternal, msg: "internal error"}, true
		}
		return e, false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, msg: "request cancelled"}, false
	}
	return &apiError{status: http.StatusInternalServerError, code: codeInternal, msg: "internal error"}, true
}
