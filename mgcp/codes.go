package mgcp

import (
	"errors"
	"strings"

	"github.com/mediagw/mediagw/session"
)

// MGCP return codes the gateway sends (RFC 3435 §2.4).
//
// Notification requests (R:, S:, Q:, D: in RQNT, CRCX, MDCX, DLCX; see
// request.go, packages.go, notify.go) are refused with:
//   - 510 when R:, S:, T: or D: does not parse, X: is missing, or Q:/T:
//     come without a request;
//   - 518 for a package RFC 3660 does not define for these endpoints
//     (only D, G, L and A are known);
//   - 522 for an event or signal name the package does not define;
//   - 512 for a defined event the endpoints cannot detect (L/hd, G/ft, D/L);
//   - 513 for a signal the gateway cannot generate: every signal but the
//     DTMF digits, A/ann and G/rt, G/it, G/cf (G/cg, D/DO, L/rg), and any
//     signal inside an embedded E(S: ...) or on DLCX; the request is
//     refused whole, nothing is stored (signals.go plays what it can:
//     RQNT, CRCX, MDCX);
//   - 514 for an announcement whose file is missing or not a WAV we play,
//     when the request does not ask for A/of (which then reports it);
//   - 523 for an unknown action (and S, the deprecated swap), or N, A, D
//     and I combined with each other;
//   - 519 for the D action with no digit map given now or before;
//   - 538 for parameters on an event (none of the DTMF events takes one);
//   - 508 for a Q: value other than process/discard/step/loop;
//   - 515 for an @ConnectionId that is not a connection of the endpoint
//     (or @$ outside CRCX/MDCX).
const (
	codeAck                = 0
	codeProvisional        = 100
	codeOK                 = 200
	codeDeleted            = 250
	codeTransient          = 400
	codeNoResourcesNow     = 403
	codeTimeout            = 406
	codeNoEndpoint         = 410
	codeUnknownEndpoint    = 500
	codeNotReady           = 501
	codeNoResources        = 502
	codeUnknownCommand     = 504
	codeUnsupportedSDP     = 505
	codeBadQuarantine      = 508
	codeBadSDP             = 509
	codeProtocol           = 510
	codeUnknownExt         = 511
	codeCannotDetect       = 512
	codeCannotSignal       = 513
	codeCannotAnnounce     = 514
	codeBadConnID          = 515
	codeBadCallID          = 516
	codeBadMode            = 517
	codeUnsupportedPackage = 518
	codeNoDigitMap         = 519
	codeNoSuchEvent        = 522
	codeBadAction          = 523
	codeUnknownLCOExt      = 525
	codeMissingSDP         = 527
	codeEventParam         = 538
	codeVersion            = 528
	codeUnsupportedLCO     = 532
	codeTooLarge           = 533
	codeCodec              = 534
	codePtime              = 535
	codeBadParam           = 539
	codeEndpointLimit      = 540
	codeInvalidLCO         = 541
)

// codeText is the commentary sent after each code.
var codeText = map[int]string{
	codeProvisional:        "In progress",
	codeOK:                 "OK",
	codeDeleted:            "Connection deleted",
	codeTransient:          "Transient error",
	codeNoResourcesNow:     "Insufficient resources",
	codeTimeout:            "Transaction timeout",
	codeNoEndpoint:         "No endpoint available",
	codeUnknownEndpoint:    "Endpoint unknown",
	codeNotReady:           "Endpoint not ready",
	codeNoResources:        "Insufficient resources (permanent)",
	codeUnknownCommand:     "Unknown command",
	codeUnsupportedSDP:     "Unsupported remote connection descriptor",
	codeBadQuarantine:      "Unknown quarantine handling",
	codeBadSDP:             "Error in remote connection descriptor",
	codeProtocol:           "Protocol error",
	codeUnknownExt:         "Unrecognized extension",
	codeCannotDetect:       "Not equipped to detect the requested event",
	codeCannotSignal:       "Not equipped to generate the requested signal",
	codeBadConnID:          "Incorrect connection ID",
	codeBadCallID:          "Unknown or incorrect call ID",
	codeBadMode:            "Unsupported or invalid mode",
	codeUnsupportedPackage: "Unsupported or unknown package",
	codeNoDigitMap:         "Endpoint does not have a digit map",
	codeNoSuchEvent:        "No such event or signal",
	codeBadAction:          "Unknown action or illegal combination of actions",
	524:                    "Internal inconsistency in local connection options",
	codeUnknownLCOExt:      "Unknown extension in local connection options",
	codeMissingSDP:         "Missing remote connection descriptor",
	codeEventParam:         "Event/signal parameter error",
	codeVersion:            "Incompatible protocol version",
	codeUnsupportedLCO:     "Unsupported value in local connection options",
	codeTooLarge:           "Response too large",
	codeCodec:              "Codec negotiation failure",
	codePtime:              "Packetization period not supported",
	codeBadParam:           "Invalid or unsupported command parameter",
	codeEndpointLimit:      "Per endpoint connection limit exceeded",
	codeInvalidLCO:         "Invalid or unsupported local connection options",
}

// sessionCode maps a session table error to the MGCP return code, for the
// verb that met it (DESIGN §2). This is the one place that choice is made.
func sessionCode(verb string, err error) int {
	switch {
	case err == nil:
		return codeOK
	case errors.Is(err, session.ErrBridgeFull):
		return codeEndpointLimit
	case errors.Is(err, session.ErrCodecUnsupported):
		return codeCodec
	case errors.Is(err, session.ErrUnknownConference):
		if verb == "DLCX" || verb == "AUCX" || verb == "MDCX" {
			return codeBadConnID // the endpoint exists but has no connections
		}
		return codeUnknownEndpoint
	case errors.Is(err, session.ErrNotMember),
		errors.Is(err, session.ErrUnknownConnection),
		errors.Is(err, session.ErrInvalidConnectionID):
		return codeBadConnID
	case errors.Is(err, session.ErrConnectionExists), errors.Is(err, session.ErrConferenceExists):
		return codeBadParam
	case errors.Is(err, session.ErrInvalidParam):
		// The table says which value it refused in the wrapped text.
		switch msg := err.Error(); {
		case strings.Contains(msg, "mode"), strings.Contains(msg, "loopback"):
			return codeBadMode
		case strings.Contains(msg, "codec"):
			return codeCodec
		case strings.Contains(msg, "ptime"):
			return codePtime
		case strings.Contains(msg, "remote"):
			return codeBadSDP
		}
		return codeUnsupportedLCO
	case errors.Is(err, session.ErrInsufficientParams):
		return codeProtocol
	}
	switch session.ResultCode(err) {
	case session.CodeAllSessionsInUse, session.CodeNoResources:
		return codeNoResourcesNow
	case session.CodeDraining:
		return codeNotReady
	case session.CodeCommandTimeout:
		return codeTimeout
	case session.CodeNoConnection, session.CodeConnNotRegistered:
		return codeBadConnID
	case session.CodeUnknownCommand:
		return codeUnknownCommand
	case session.CodeMalformed:
		return codeProtocol
	}
	return codeTransient
}

// reasonCode is the E: reason of a gateway-initiated DLCX for a release
// that the call agent did not ask for (RFC 3435 §2.3.8 codes 900-905).
func reasonCode(r session.Release) (int, string) {
	switch r.Code {
	case session.CodeInactivity:
		return 902, "loss of lower layer connectivity"
	case session.CodeDraining:
		return 901, "endpoint taken out of service"
	case session.CodeInternal:
		return 900, "endpoint malfunctioning"
	}
	return 904, "manual intervention"
}
