package control

import (
	"fmt"
	"strconv"

	"github.com/mediagw/mediagw/session"
)

// GatherDigits: ConnectionId; TermCondMaxDigits, TermCondDigit (a key),
// TermCondInterDigitDelay and TermCondMaxTime (ms); State. The result is the
// OperationId; the digits come in a GatherDigits_Complete event.
func gatherDigits(t *session.Table, p params) (result, undo, error) {
	id, err := p.required("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	var g session.GatherParams
	g.TermDigit = -1
	if v, ok, err := p.str("TermCondMaxDigits"); err != nil {
		return nil, nil, err
	} else if ok {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > 64 {
			return nil, nil, fmt.Errorf("%w: TermCondMaxDigits=%q (1-64)", session.ErrInvalidParam, v)
		}
		g.MaxDigits = n
	}
	if v, ok, err := p.str("TermCondDigit"); err != nil {
		return nil, nil, err
	} else if ok {
		code, valid := byte(0), len(v) == 1
		if valid {
			code, valid = session.DigitCode(v[0])
		}
		if !valid {
			return nil, nil, fmt.Errorf("%w: TermCondDigit=%q (one of 0-9*#A-D)", session.ErrInvalidParam, v)
		}
		g.TermDigit = int(code)
	}
	if g.InterDigit, err = p.millis("TermCondInterDigitDelay"); err != nil {
		return nil, nil, err
	}
	if g.MaxTime, err = p.millis("TermCondMaxTime"); err != nil {
		return nil, nil, err
	}
	if g.State, err = p.optional("State"); err != nil {
		return nil, nil, err
	}
	op, err := t.GatherDigits(id, g)
	if err != nil {
		return nil, nil, err
	}
	stop := func() { _, _ = t.StopMediaOperation(id, op) }
	return result{"ConnectionId": id, "OperationId": op}, stop, nil
}

// StopMediaOperation: ConnectionId, OperationId (optional: else all of the
// connection's); the stopped operations complete with userstop.
func stopMediaOperation(t *session.Table, p params) (result, undo, error) {
	id, err := p.required("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	op, err := p.optional("OperationId")
	if err != nil {
		return nil, nil, err
	}
	done, err := t.StopMediaOperation(id, op)
	if err != nil {
		return nil, nil, err
	}
	return result{"ConnectionId": id, "Stopped": strconv.Itoa(len(done))}, nil, nil
}
