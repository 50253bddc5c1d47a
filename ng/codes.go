package ng

import (
	"errors"

	"github.com/mediagw/mediagw/session"
)

// Replies carry "result": "ok", "pong" or "error"; an error carries an
// "error-reason" and a delete of an unknown call a "warning". This file is
// the one place where failures become those texts; the wording follows
// rtpengine's where it has one, so scripts that match on it keep working.
const (
	resultOK    = "ok"
	resultPong  = "pong"
	resultError = "error"
	// resultLoadLimit tells a client that sent "supports": ["load limit"]
	// to set the call up on another relay (Kamailio's module does).
	resultLoadLimit = "load limit"
)

const (
	reasonUnknownCommand = "Unrecognized command"
	reasonNoCallID       = "No call-id in message"
	reasonNoFromTag      = "No from-tag in message"
	reasonNoToTag        = "No to-tag in message"
	reasonNoSDP          = "No SDP body in message"
	reasonBadSDP         = "Failed to parse SDP"
	reasonUnknownCall    = "Unknown call-id"
	reasonUnknownTag     = "Unknown tag"
	reasonDecode         = "Could not decode bencode dictionary"
	reasonNoMedia        = "No relayable media stream in SDP"
	warnNotFound         = "Call-ID not found or tags didn't match"
)

// notSupported is the reason given for the media commands this front
// recognizes but cannot act on yet (the media engine is being built).
func notSupported(cmd string) string {
	return "'" + cmd + "' is not supported by mediagw yet (no media engine for it on the ng front)"
}

// refusesNewCalls reports whether a table error means "not here, try
// another relay": draining or out of ports/resources.
func refusesNewCalls(err error) bool {
	return errors.Is(err, session.ErrDraining) || errors.Is(err, session.ErrNoResources)
}

// tableReason turns a session table error into an error-reason.
func tableReason(err error) string {
	switch {
	case errors.Is(err, session.ErrDraining):
		return "Server is shutting down"
	case errors.Is(err, session.ErrNoResources):
		return "Ran out of ports or media resources"
	case errors.Is(err, session.ErrInvalidParam):
		return "Invalid media parameters: " + err.Error()
	case errors.Is(err, session.ErrUnknownConnection), errors.Is(err, session.ErrUnknownConference):
		return "Call was released meanwhile"
	}
	return "Internal error"
}
