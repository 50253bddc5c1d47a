package session

import (
	"fmt"
	"strconv"
	"time"

	"github.com/mediagw/mediagw/audio"
	"github.com/mediagw/mediagw/confbridge"
)

// Output operations (DESIGN §8): Play, PlayTone and SendDigits put sound
// (or RFC 4733 events) into what a connection hears, or into what a whole
// conference hears. They run in the conference mixer (confbridge), which
// gives them the connection's own RTP stream, continuous in sequence and
// timestamp; one runs per target at a time (another is ResultCode 14). A
// target that is not mixed (a connection outside any conference, or a
// two-party relay bridge or one of its legs) borrows a private mixer for
// the duration (lent.go).

// TermEOD: the operation played all it had.
const TermEOD = "eod"

// PlayParams are Play's parameters.
type PlayParams struct {
	Prompts   []string // files under media.dir, played in order
	MaxTime   time.Duration
	TermDigit int // RFC 4733 code that stops the play, -1 = none
	MaxDigits int // digits that stop the play, 0 = none
	State     string
}

// ToneParams are PlayTone's: two frequencies (Hz; 0 = none) at levels in
// dBm0 (-40..0) for a duration (0 = until stopped). With Steps, the steps
// play in a loop instead (a cadence: ringback, a confirmation tone), for
// Repeat rounds (0 = until Duration or a stop).
type ToneParams struct {
	Freq1, Freq2   float64
	Level1, Level2 float64
	Duration       time.Duration
	Steps          []ToneStep
	Repeat         int
	State          string
}

// ToneStep is one step of a cadence: up to two frequencies (Hz, both 0 =
// silence) at one level (dBm0), for Duration (> 0).
type ToneStep struct {
	Freq1, Freq2 float64
	Level        float64
	Duration     time.Duration
}

// Play plays prompts to connID (what it alone hears, on top of the
// conference) or, with connID empty, to every member of confID.
func (t *Table) Play(connID, confID string, p PlayParams) (string, error) {
	if len(p.Prompts) == 0 {
		return "", fmt.Errorf("%w: Play needs Prompt1", ErrInsufficientParams)
	}
	if p.MaxTime < 0 || p.MaxDigits < 0 || p.TermDigit > 15 {
		return "", fmt.Errorf("%w: Play termination conditions", ErrInvalidParam)
	}
	prompts := make([][]int16, 0, len(p.Prompts))
	for _, name := range p.Prompts {
		pcm, err := t.prompts.load(t.cfg.Media.Dir, name)
		if err != nil {
			return "", err
		}
		prompts = append(prompts, pcm)
	}
	cond := GatherParams{MaxDigits: p.MaxDigits, TermDigit: p.TermDigit, MaxTime: p.MaxTime, State: p.State}
	return t.startOutput(connID, confID, "Play", cond, &promptSource{prompts: prompts}, nil, nil)
}

// PlayTone plays a one- or two-frequency tone, or a cadence of steps.
func (t *Table) PlayTone(connID, confID string, p ToneParams) (string, error) {
	steps := p.Steps
	if len(steps) == 0 {
		if p.Freq1 == 0 && p.Freq2 == 0 {
			return "", fmt.Errorf("%w: PlayTone needs Frequency1", ErrInsufficientParams)
		}
		if err := checkTone(p.Freq1, p.Level1); err != nil {
			return "", err
		}
		if err := checkTone(p.Freq2, p.Level2); err != nil {
			return "", err
		}
	}
	if len(steps) > 16 || p.Repeat < 0 {
		return "", fmt.Errorf("%w: at most 16 tone steps, Repeat >= 0", ErrInvalidParam)
	}
	for _, st := range steps {
		if err := checkTone(st.Freq1, st.Level); err != nil {
			return "", err
		}
		if err := checkTone(st.Freq2, st.Level); err != nil {
			return "", err
		}
		if st.Duration <= 0 || st.Duration > time.Minute {
			return "", fmt.Errorf("%w: tone step duration %s (0-60 s)", ErrInvalidParam, st.Duration)
		}
	}
	if p.Duration < 0 {
		return "", fmt.Errorf("%w: tone duration", ErrInvalidParam)
	}
	src := newToneSource(p)
	return t.startOutput(connID, confID, "PlayTone", GatherParams{TermDigit: -1, State: p.State}, src, nil, nil)
}

func checkTone(f, level float64) error {
	if f < 0 || f > 3900 {
		return fmt.Errorf("%w: tone frequency %g Hz (0-3900)", ErrInvalidParam, f)
	}
	if f != 0 && (level < -40 || level > 0) {
		return fmt.Errorf("%w: tone level %g dBm0 (-40..0)", ErrInvalidParam, level)
	}
	return nil
}

// SendDigits sends keys ("0-9*#A-D") to connID: as RFC 4733
// telephone-events when its remote negotiated them, else as in-band DTMF.
func (t *Table) SendDigits(connID, digits, state string) (string, error) {
	return t.SendDigitsWith(connID, DigitParams{Digits: digits, State: state})
}

// DigitParams are SendDigitsWith's: the keys, each On long (default
// 100 ms) with Pause between them (default 60 ms), at Level dBm0 (-63..0;
// 0 = the default: -10 for events, -8/-6 for the two in-band tones).
type DigitParams struct {
	Digits    string
	On, Pause time.Duration
	Level     float64
	State     string
}

// SendDigitsWith is SendDigits with the keys' timing and level.
func (t *Table) SendDigitsWith(connID string, p DigitParams) (string, error) {
	if connID == "" {
		return "", fmt.Errorf("%w: SendDigits needs ConnectionId", ErrInsufficientParams)
	}
	if p.Digits == "" {
		return "", fmt.Errorf("%w: SendDigits needs Digits", ErrInsufficientParams)
	}
	if len(p.Digits) > 64 {
		return "", fmt.Errorf("%w: Digits longer than 64 keys", ErrInvalidParam)
	}
	if p.On < 0 || p.On > 5*time.Second || p.Pause < 0 || p.Pause > 5*time.Second || p.Level < -63 || p.Level > 0 {
		return "", fmt.Errorf("%w: digit duration or pause (0-5 s) or level (-63..0 dBm0)", ErrInvalidParam)
	}
	codes := make([]byte, len(p.Digits))
	for i := range len(p.Digits) {
		c, ok := audio.KeyCode(p.Digits[i])
		if !ok {
			return "", fmt.Errorf("%w: Digits=%q (0-9*#A-D)", ErrInvalidParam, p.Digits)
		}
		codes[i] = c
	}
	return t.startOutput(connID, "", "SendDigits", GatherParams{TermDigit: -1, State: p.State}, nil, &p, codes)
}

// unlockAnnounce drops mu and announces the operations autostopped while
// it was held (a lent mixer taken back by a join, a codec change).
func (t *Table) unlockAnnounce() {
	p := t.takePendingLocked()
	t.mu.Unlock()
	t.announceOps(p)
}

// startOutput starts an output operation on its target: src played, or
// codes sent as digits.
func (t *Table) startOutput(connID, confID, action string, cond GatherParams, src confbridge.Source, dp *DigitParams, codes []byte) (string, error) {
	t.mu.Lock()
	defer t.unlockAnnounce()
	key, c, cf, err := t.outputTargetLocked(connID, confID)
	if err != nil {
		return "", err
	}
	if t.ops.outputs[key] != nil {
		return "", fmt.Errorf("%w: %s on %s", ErrOperationActive, t.ops.outputs[key].action, key[2:])
	}
	op := &operation{id: strconv.FormatUint(t.ops.next+1, 10), action: action, connID: connID,
		state: cond.State, p: cond, started: time.Now(), key: key}
	mixer, err := t.targetMixerLocked(c, cf, op)
	if err != nil {
		return "", err
	}
	t.ops.next++
	end := func() { t.expire(op, TermEOD) }
	switch {
	case codes != nil && c.TelephoneEvent != 0:
		et := confbridge.EventTiming{PT: c.TelephoneEvent, On: dp.On, Pause: dp.Pause, Volume: uint8(-dp.Level)}
		err = mixer.SendEventsTimed(connID, codes, et, end)
		op.stop = func() { _ = mixer.StopEvents(connID) }
	case codes != nil:
		on, pause, level := 100*time.Millisecond, 60*time.Millisecond, audio.DTMFLowLevel
		if dp.On > 0 {
			on = dp.On
		}
		if dp.Pause > 0 {
			pause = dp.Pause
		}
		if dp.Level < 0 {
			level = dp.Level
		}
		err = mixer.Play(connID, audio.NewDTMFSourceLevel(codes, int(on/time.Millisecond), int(pause/time.Millisecond), level), end)
		op.stop = func() { _ = mixer.StopPlay(connID) }
	case connID != "":
		err = mixer.Play(connID, src, end)
		op.stop = func() { _ = mixer.StopPlay(connID) }
	default:
		err = mixer.PlayAll(src, end)
		op.stop = mixer.StopPlayAll
	}
	if err != nil {
		t.giveBackLocked(op)
		return "", fmt.Errorf("%w: %v", ErrInternal, err)
	}
	t.ops.ops[op.id] = op
	t.saveOpLocked(op)
	t.ops.outputs[key] = op
	t.met.opsActive.WithLabelValues(action).Inc()
	if cond.MaxTime > 0 {
		op.maxTimer = time.AfterFunc(cond.MaxTime, func() { t.expire(op, TermMaxTime) })
	}
	return op.id, nil
}

// outputTargetLocked checks an output or record operation's target: the
// connection connID, or with connID empty the conference (or relay
// bridge) confID. It returns the target's key in opState.
func (t *Table) outputTargetLocked(connID, confID string) (string, *conn, *conf, error) {
	if connID == "" {
		if confID == "" {
			return "", nil, nil, fmt.Errorf("%w: ConnectionId or ConferenceId", ErrInsufficientParams)
		}
		cf, ok := t.confs[confID]
		if !ok {
			return "", nil, nil, fmt.Errorf("%w: %s", ErrUnknownConference, confID)
		}
		return "f:" + confID, nil, cf, nil
	}
	if err := checkConnID(connID); err != nil {
		return "", nil, nil, err
	}
	c, ok := t.conns[connID]
	if !ok {
		return "", nil, nil, fmt.Errorf("%w: %s", ErrUnknownConnection, connID)
	}
	if confID != "" && (c.conf == nil || c.conf.id != confID) {
		return "", nil, nil, fmt.Errorf("%w: %s in %s", ErrNotMember, connID, confID)
	}
	return "c:" + connID, c, c.conf, nil
}

// targetMixerLocked is the mixer op plays or listens through: the
// conference's, or one lent to a target that has none (lent.go). It sets
// op.confID. Caller holds mu.
func (t *Table) targetMixerLocked(c *conn, cf *conf, op *operation) (*confbridge.Bridge, error) {
	if cf != nil {
		op.confID = cf.id
		if cf.mixer != nil {
			return cf.mixer, nil
		}
	}
	if c == nil {
		if len(cf.members) == 0 {
			return nil, fmt.Errorf("%w: %s has no members", ErrInvalidParam, cf.id)
		}
		c = cf.members[0].c
	}
	l, err := t.borrowLocked(c, op)
	if err != nil {
		return nil, err
	}
	return l.mixer, nil
}

// outputDigitLocked lets a digit end the connection's Play by its
// TermCondDigit / TermCondMaxDigits. Caller holds mu.
func (t *Table) outputDigitLocked(connID string, d byte) []OperationResult {
	var done []OperationResult
	for _, op := range []*operation{t.ops.outputs["c:"+connID], t.ops.records["c:"+connID]} {
		if op == nil || (op.p.TermDigit < 0 && op.p.MaxDigits == 0) {
			continue
		}
		if r, ended := t.addDigitLocked(op, d); ended {
			done = append(done, r)
		}
	}
	return done
}

// stopMemberOutputLocked ends connID's output operation (it leaves its
// mixer) with autostop into the pending list. Caller holds mu.
func (t *Table) stopMemberOutputLocked(connID string) {
	for _, op := range []*operation{t.ops.outputs["c:"+connID], t.ops.records["c:"+connID], t.ops.detects["c:"+connID]} {
		if op != nil {
			t.ops.pending = append(t.ops.pending, t.finishLocked(op, TermAutoStop))
		}
	}
}

// stopConfOutputLocked ends a conference's own output operation. Caller holds mu.
func (t *Table) stopConfOutputLocked(confID string) {
	for _, op := range []*operation{t.ops.outputs["f:"+confID], t.ops.records["f:"+confID]} {
		if op != nil {
			t.ops.pending = append(t.ops.pending, t.finishLocked(op, TermAutoStop))
		}
	}
}

// takePendingLocked returns the autostopped operations not yet announced.
func (t *Table) takePendingLocked() []OperationResult {
	p := t.ops.pending
	t.ops.pending = nil
	return p
}
