package control

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mediagw/mediagw/audio"
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
	id, err := p.optional("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	op, err := p.optional("OperationId")
	if err != nil {
		return nil, nil, err
	}
	if id == "" && op == "" {
		return nil, nil, fmt.Errorf("%w: ConnectionId or OperationId", session.ErrInsufficientParams)
	}
	done, err := t.StopMediaOperation(id, op)
	if err != nil {
		return nil, nil, err
	}
	r := result{"Stopped": strconv.Itoa(len(done))}
	if id != "" {
		r["ConnectionId"] = id
	}
	return r, nil, nil
}

// target reads an output operation's target: ConnectionId (one member), or
// ConferenceId alone (the whole conference).
func (p params) target() (connID, confID string, err error) {
	if connID, err = p.optional("ConnectionId"); err != nil {
		return "", "", err
	}
	if confID, err = p.optional("ConferenceId"); err != nil {
		return "", "", err
	}
	if connID == "" && confID == "" {
		return "", "", fmt.Errorf("%w: ConnectionId or ConferenceId", session.ErrInsufficientParams)
	}
	return connID, confID, nil
}

// termKey reads a TermCondDigit-style key parameter (-1 when absent).
func (p params) termKey(name string) (int, error) {
	v, ok, err := p.str(name)
	if err != nil || !ok {
		return -1, err
	}
	code, valid := byte(0), len(v) == 1
	if valid {
		code, valid = session.DigitCode(v[0])
	}
	if !valid {
		return -1, fmt.Errorf("%w: %s=%q (one of 0-9*#A-D)", session.ErrInvalidParam, name, v)
	}
	return int(code), nil
}

func (p params) number(name string, def, lo, hi float64) (float64, error) {
	v, ok, err := p.str(name)
	if err != nil || !ok {
		return def, err
	}
	f, perr := strconv.ParseFloat(v, 64)
	if perr != nil || f < lo || f > hi {
		return 0, fmt.Errorf("%w: %s=%q (%g..%g)", session.ErrInvalidParam, name, v, lo, hi)
	}
	return f, nil
}

func opResult(connID, confID, op string) result {
	r := result{"OperationId": op}
	if connID != "" {
		r["ConnectionId"] = connID
	}
	if confID != "" {
		r["ConferenceId"] = confID
	}
	return r
}

// Play: ConnectionId or ConferenceId; Prompt1..Prompt3 (files under
// media.dir); TermCondMaxTime (ms), TermCondDigit, TermCondMaxDigits; State.
func play(t *session.Table, p params) (result, undo, error) {
	connID, confID, err := p.target()
	if err != nil {
		return nil, nil, err
	}
	pp := session.PlayParams{}
	for _, k := range []string{"Prompt1", "Prompt2", "Prompt3"} {
		v, err := p.optional(k)
		if err != nil {
			return nil, nil, err
		}
		if v != "" {
			pp.Prompts = append(pp.Prompts, v)
		}
	}
	if pp.TermDigit, err = p.termKey("TermCondDigit"); err != nil {
		return nil, nil, err
	}
	n, err := p.number("TermCondMaxDigits", 0, 1, 64)
	if err != nil {
		return nil, nil, err
	}
	pp.MaxDigits = int(n)
	if pp.MaxTime, err = p.millis("TermCondMaxTime"); err != nil {
		return nil, nil, err
	}
	if pp.State, err = p.optional("State"); err != nil {
		return nil, nil, err
	}
	op, err := t.Play(connID, confID, pp)
	if err != nil {
		return nil, nil, err
	}
	return opResult(connID, confID, op), stopper(t, connID, op), nil
}

// PlayTone: target; Frequency1, Frequency2 (Hz), Amplitude1, Amplitude2
// (dBm0, -40..0, default -13), Duration (ms; absent = until stopped); State.
func playTone(t *session.Table, p params) (result, undo, error) {
	connID, confID, err := p.target()
	if err != nil {
		return nil, nil, err
	}
	var tp session.ToneParams
	if tp.Freq1, err = p.number("Frequency1", 0, 0, 3900); err != nil {
		return nil, nil, err
	}
	if tp.Freq2, err = p.number("Frequency2", 0, 0, 3900); err != nil {
		return nil, nil, err
	}
	if tp.Level1, err = p.number("Amplitude1", -13, -40, 0); err != nil {
		return nil, nil, err
	}
	if tp.Level2, err = p.number("Amplitude2", -13, -40, 0); err != nil {
		return nil, nil, err
	}
	if tp.Duration, err = p.millis("Duration"); err != nil {
		return nil, nil, err
	}
	if tp.State, err = p.optional("State"); err != nil {
		return nil, nil, err
	}
	op, err := t.PlayTone(connID, confID, tp)
	if err != nil {
		return nil, nil, err
	}
	return opResult(connID, confID, op), stopper(t, connID, op), nil
}

// SendDigits: ConnectionId, Digits (0-9*#A-D); State.
func sendDigits(t *session.Table, p params) (result, undo, error) {
	id, err := p.required("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	digits, err := p.required("Digits")
	if err != nil {
		return nil, nil, err
	}
	state, err := p.optional("State")
	if err != nil {
		return nil, nil, err
	}
	op, err := t.SendDigits(id, digits, state)
	if err != nil {
		return nil, nil, err
	}
	return opResult(id, "", op), stopper(t, id, op), nil
}

// DetectSilence: ConnectionId, SilenceTime (ms); State.
func detectSilence(t *session.Table, p params) (result, undo, error) {
	return detectLevel(t, p, "SilenceTime", t.DetectSilence)
}

// DetectNonSilence: ConnectionId, NonSilenceTime (ms); State.
func detectNonSilence(t *session.Table, p params) (result, undo, error) {
	return detectLevel(t, p, "NonSilenceTime", t.DetectNonSilence)
}

func detectLevel(t *session.Table, p params, timeParam string, start func(string, time.Duration, string) (string, error)) (result, undo, error) {
	id, err := p.required("ConnectionId")
	if err != nil {
		return nil, nil, err
	}
	if _, err := p.required(timeParam); err != nil {
		return nil, nil, err
	}
	d, err := p.millis(timeParam)
	if err != nil {
		return nil, nil, err
	}
	state, err := p.optional("State")
	if err != nil {
		return nil, nil, err
	}
	op, err := start(id, d, state)
	if err != nil {
		return nil, nil, err
	}
	return opResult(id, "", op), stopper(t, id, op), nil
}

func stopper(t *session.Table, connID, op string) undo {
	return func() { _, _ = t.StopMediaOperation(connID, op) }
}

// Record: ConnectionId (what it says) or ConferenceId (the mix); Filename
// (a plain name under media.record_dir), AudioFileEncoding (pcm, ulaw,
// alaw); TermCondMaxTime, TermCondSilence (ms), TermCondDigit; State.
func record(t *session.Table, p params) (result, undo, error) {
	connID, confID, err := p.target()
	if err != nil {
		return nil, nil, err
	}
	var rp session.RecordParams
	if rp.Filename, err = p.optional("Filename"); err != nil {
		return nil, nil, err
	}
	enc, err := p.optional("AudioFileEncoding")
	if err != nil {
		return nil, nil, err
	}
	var ok bool
	if rp.Encoding, ok = audio.ParseEncoding(enc); !ok {
		return nil, nil, fmt.Errorf("%w: AudioFileEncoding=%q (pcm, ulaw, alaw)", session.ErrInvalidParam, enc)
	}
	if rp.MaxTime, err = p.millis("TermCondMaxTime"); err != nil {
		return nil, nil, err
	}
	if rp.Silence, err = p.millis("TermCondSilence"); err != nil {
		return nil, nil, err
	}
	if rp.TermDigit, err = p.termKey("TermCondDigit"); err != nil {
		return nil, nil, err
	}
	if rp.State, err = p.optional("State"); err != nil {
		return nil, nil, err
	}
	op, err := t.Record(connID, confID, rp)
	if err != nil {
		return nil, nil, err
	}
	return opResult(connID, confID, op), stopper(t, connID, op), nil
}
