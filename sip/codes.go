package sip

import (
	"errors"

	"github.com/mediagw/mediagw/session"
)

// status maps an error to the SIP final response that reports it: session
// errors by their ResultCode (DESIGN §2), SDP errors as 400 or 488. This is
// the one place where the SIP front chooses failure codes.
func status(err error) (code int, reason string) {
	switch {
	case err == nil:
		return 200, "OK"
	case errors.Is(err, errSDPMalformed), errors.Is(err, errBadRequest):
		return 400, "Bad Request"
	case errors.Is(err, errSDPNotAcceptable), errors.Is(err, session.ErrCodecUnsupported):
		return 488, "Not Acceptable Here"
	case errors.Is(err, errUnsupportedMedia):
		return 415, "Unsupported Media Type"
	case errors.Is(err, errLegEnded), errors.Is(err, session.ErrNotMember):
		return 481, "Call/Transaction Does Not Exist"
	}
	switch session.ResultCode(err) {
	case session.CodeAllSessionsInUse, session.CodeDraining, session.CodeNoResources:
		return 503, "Service Unavailable"
	case session.CodeCommandTimeout:
		return 408, "Request Timeout"
	case session.CodeConnectionExists:
		return 491, "Request Pending"
	case session.CodeNoConnection, session.CodeConnNotRegistered:
		return 481, "Call/Transaction Does Not Exist"
	case session.CodeUnknownCommand:
		return 501, "Not Implemented"
	case session.CodeNotInConference:
		return 404, "Not Found"
	case session.CodeInvalidValue:
		return 488, "Not Acceptable Here"
	case session.CodeInvalidConnID, session.CodeInsufficientParams, session.CodeMalformed:
		return 400, "Bad Request"
	}
	return 500, "Server Internal Error"
}

// reasonPhrase is the standard reason phrase of a status we send.
func reasonPhrase(code int) string {
	switch code {
	case 100:
		return "Trying"
	case 180:
		return "Ringing"
	case 181:
		return "Call Is Being Forwarded"
	case 182:
		return "Queued"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 415:
		return "Unsupported Media Type"
	case 480:
		return "Temporarily Unavailable"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 483:
		return "Too Many Hops"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 491:
		return "Request Pending"
	case 500:
		return "Server Internal Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 505:
		return "Version Not Supported"
	case 603:
		return "Decline"
	}
	switch code / 100 {
	case 1:
		return "Session Progress"
	case 2:
		return "OK"
	case 3:
		return "Redirect"
	case 4:
		return "Request Failure"
	case 5:
		return "Server Failure"
	}
	return "Global Failure"
}

// releaseReason is the Reason header (RFC 3326) of a BYE that the gateway
// sends because the session table released the leg's connection.
func releaseReason(r session.Release) string {
	switch {
	case r.Code == session.CodeInactivity:
		return `SIP;cause=408;text="media timeout"`
	case r.Code == session.CodeDraining:
		return `SIP;cause=503;text="gateway shutting down"`
	case r.By != "" && r.By != session.FrontSIP && r.By != session.FrontSystem:
		return `SIP;cause=200;text="released by ` + string(r.By) + `"`
	}
	return `SIP;cause=200;text="call completed"`
}
