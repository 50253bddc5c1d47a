package sip

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/mediagw/mediagw/session"
)

// infoDigit reads the DTMF key of a SIP INFO body: application/dtmf-relay
// ("Signal=5\r\nDuration=160") or application/dtmf ("5"). ok false: the
// body is not DTMF of either kind; err: it claims to be and is not valid.
func infoDigit(contentType string, body []byte) (code byte, ok bool, bad bool) {
	ct, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(contentType)), ";")
	var key string
	switch strings.TrimSpace(ct) {
	case "application/dtmf-relay":
		for _, line := range bytes.Split(body, []byte("\n")) {
			name, value, found := bytes.Cut(bytes.TrimSpace(line), []byte("="))
			if found && strings.EqualFold(string(bytes.TrimSpace(name)), "Signal") {
				key = string(bytes.TrimSpace(value))
			}
		}
	case "application/dtmf":
		key = string(bytes.TrimSpace(body))
	default:
		return 0, false, false
	}
	if len(key) == 1 {
		if c, valid := session.DigitCode(key[0]); valid {
			return c, true, false
		}
	}
	// Some phones send the event number (RFC 4733 code) instead of the key.
	if n, err := strconv.Atoi(key); err == nil && n >= 10 && n <= 15 {
		return byte(n), true, false
	}
	return 0, true, true
}
