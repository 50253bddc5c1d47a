package session

import (
	"errors"
	"strconv"
)

// Error is a failure with its Media Control ResultCode.
type Error struct {
	Code int
	Text string
}

func (e *Error) Error() string { return e.Text }

// Result codes of Media Control (decimal strings on the wire).
const (
	CodeSuccess            = 0
	CodeAllSessionsInUse   = 4
	CodeDraining           = 5
	CodeInternal           = 6
	CodeNoResources        = 8
	CodeInactivity         = 12
	CodeCommandTimeout     = 13
	CodeConnectionExists   = 15
	CodeNoConnection       = 16
	CodeUnknownCommand     = 21
	CodeInvalidConnID      = 22
	CodeConnNotRegistered  = 23
	CodeNotInConference    = 24
	CodeInsufficientParams = 26
	CodeInvalidValue       = 27
	CodeMalformed          = 35
)

// Sentinels; wrap them with detail (fmt.Errorf("%w: ...", ErrX)) and test
// with errors.Is.
var (
	ErrDraining            = &Error{CodeDraining, "server draining"}
	ErrInternal            = &Error{CodeInternal, "internal error"}
	ErrNoResources         = &Error{CodeNoResources, "media resource not available"}
	ErrBridgeFull          = &Error{CodeNoResources, "bridge already has two connections"}
	ErrConferenceFull      = &Error{CodeNoResources, "conference has conference.max_members members"}
	ErrCodecUnsupported    = &Error{CodeNoResources, "codec not supported here"}
	ErrConnectionExists    = &Error{CodeConnectionExists, "connection already exists"}
	ErrConferenceExists    = &Error{CodeConnectionExists, "conference already exists"}
	ErrInvalidConnectionID = &Error{CodeInvalidConnID, "ConnectionId in invalid format"}
	ErrUnknownConnection   = &Error{CodeConnNotRegistered, "ConnectionId not registered"}
	ErrUnknownConference   = &Error{CodeNotInConference, "conference unknown"}
	ErrNotMember           = &Error{CodeNotInConference, "connection not in conference"}
	ErrInsufficientParams  = &Error{CodeInsufficientParams, "insufficient parameters"}
	ErrInvalidParam        = &Error{CodeInvalidValue, "invalid parameter value"}
)

// ResultCode maps err to its ResultCode: 0 for nil, the *Error's code, and
// 6 (internal error) for anything else.
func ResultCode(err error) int {
	if err == nil {
		return CodeSuccess
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ResultCodeString is ResultCode as the decimal string used on the wire.
func ResultCodeString(err error) string { return strconv.Itoa(ResultCode(err)) }
