package session

import (
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Media operations (DESIGN §8): an operation belongs to a connection, has
// an OperationId, and ends exactly once with a TerminationCondition: by its
// own conditions, by StopMediaOperation (userstop), or by the release of
// its connection (autostop, announced before the ConnectionReleased
// event). Its end is an OperationComplete event. GatherDigits is the first;
// Play, Record and PlayTone are to join it here.
//
// Digits are buffered per connection from the moment they arrive (RFC 4733
// events heard by a conference mixer, SIP INFO), and a GatherDigits
// consumes the buffer first. Digit events reach the engine through an
// ordered queue drained off the media goroutine that reported them.

// Termination conditions.
const (
	TermMaxDigits  = "maxdigits"
	TermDigit      = "digit"
	TermInterDigit = "interdigdelay"
	TermMaxTime    = "maxtime"
	TermUserStop   = "userstop"
	TermAutoStop   = "autostop"
)

// ErrOperationActive: a GatherDigits runs already on the connection.
var ErrOperationActive = &Error{14, "a media operation of that kind is already running on the connection"}

// digitBufferMax bounds a connection's buffered digits (oldest dropped).
const digitBufferMax = 64

// GatherParams are GatherDigits' parameters; a zero duration or count is
// "no such condition". At least one condition is required.
type GatherParams struct {
	MaxDigits  int
	TermDigit  int // RFC 4733 code of the terminating key, -1 = none
	InterDigit time.Duration
	MaxTime    time.Duration
	State      string // echoed in the completion
}

// OperationResult is how an operation ended (Event.Op of OperationComplete).
type OperationResult struct {
	OperationID          string
	Action               string
	ConnectionID         string
	ConferenceID         string
	State                string
	TerminationCondition string
	Digits               string // GatherDigits: the keys gathered, "0-9*#A-D"
	Filename             string // Record: the file under media.record_dir
	ResultCode           int
	Elapsed              time.Duration
}

type operation struct {
	id, action, connID, state string
	confID                    string // the conference an output operation plays to (media.go)
	key                       string // its key in opState.outputs ("" for a gather)
	p                         GatherParams
	started                   time.Time
	digits                    []byte
	maxTimer, interTimer      *time.Timer
	stop                      func()        // ends the mixer's part early (output operations)
	record                    bool          // a Record: its stop always runs (it closes the writer's queue)
	filename                  string        // Record: the file, relative to media.record_dir
	rec                       *RecordParams // Record: its parameters (kept in the state: persist_ops.go)
	lent                      *lent         // the mixer lent for it (lent.go), nil when none
	failed                    bool          // ends with a ResultCode (mediagw_media_operations_total "failed")
	detect                    bool          // a DetectSilence / DetectNonSilence (detect.go)
}

// opState is the engine's state, guarded by Table.mu.
type opState struct {
	ops     map[string]*operation // by OperationId
	gathers map[string]*operation // by ConnectionId
	outputs map[string]*operation // Play, PlayTone, SendDigits: by "c:"+ConnectionId or "f:"+ConferenceId
	records map[string]*operation // Record, keyed the same way
	detects map[string]*operation // DetectSilence, DetectNonSilence: by "c:"+ConnectionId
	pending []OperationResult     // autostopped by a leave, announced by the release that caused it
	buf     map[string][]byte     // buffered digits by ConnectionId
	next    uint64

	qmu      sync.Mutex // guards queue and draining
	queue    []digitIn
	draining bool
}

type digitIn struct {
	connID string
	digit  byte
}

// GatherDigits starts gathering digits on connection id; the result comes
// as an OperationComplete event. It returns the OperationId.
func (t *Table) GatherDigits(id string, p GatherParams) (string, error) {
	if err := checkConnID(id); err != nil {
		return "", err
	}
	if p.MaxDigits < 0 || p.InterDigit < 0 || p.MaxTime < 0 || p.TermDigit > 15 {
		return "", fmt.Errorf("%w: GatherDigits conditions", ErrInvalidParam)
	}
	if p.MaxDigits == 0 && p.TermDigit < 0 && p.InterDigit == 0 && p.MaxTime == 0 {
		return "", fmt.Errorf("%w: GatherDigits needs a termination condition", ErrInsufficientParams)
	}
	var done []OperationResult
	t.mu.Lock()
	if _, ok := t.conns[id]; !ok {
		t.mu.Unlock()
		return "", fmt.Errorf("%w: %s", ErrUnknownConnection, id)
	}
	if t.ops.gathers[id] != nil {
		t.mu.Unlock()
		return "", fmt.Errorf("%w: GatherDigits on %s", ErrOperationActive, id)
	}
	t.ops.next++
	op := &operation{id: strconv.FormatUint(t.ops.next, 10), action: "GatherDigits", connID: id, state: p.State, p: p, started: time.Now()}
	t.ops.ops[op.id] = op
	t.saveOpLocked(op)
	t.ops.gathers[id] = op
	t.met.opsActive.WithLabelValues(op.action).Inc()
	t.listenLocked(t.conns[id]) // in-band digits on a leg that has no mixer
	buffered := t.ops.buf[id]
	delete(t.ops.buf, id)
	for i, d := range buffered {
		if r, ended := t.addDigitLocked(op, d); ended {
			done = append(done, r)
			if rest := buffered[i+1:]; len(rest) > 0 { // what the gather did not take stays
				t.ops.buf[id] = append([]byte(nil), rest...)
			}
			break
		}
	}
	if len(done) == 0 {
		if p.MaxTime > 0 {
			op.maxTimer = time.AfterFunc(p.MaxTime, func() { t.expire(op, TermMaxTime) })
		}
		t.armInterDigitLocked(op)
	}
	t.mu.Unlock()
	t.announceOps(done)
	return op.id, nil
}

// StopMediaOperation ends connection id's operations (all of them, or the
// one opID names) with userstop. Unknown connection 23; an opID that is not
// running there 27.
//
// With id empty, opID names any running operation (a conference's Play).
func (t *Table) StopMediaOperation(id, opID string) ([]OperationResult, error) {
	if id == "" && opID != "" {
		t.mu.Lock()
		op := t.ops.ops[opID]
		if op == nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("%w: OperationId %q is not running", ErrInvalidParam, opID)
		}
		done := []OperationResult{t.finishLocked(op, TermUserStop)}
		t.mu.Unlock()
		t.announceOps(done)
		return done, nil
	}
	if err := checkConnID(id); err != nil {
		return nil, err
	}
	t.mu.Lock()
	if _, ok := t.conns[id]; !ok {
		t.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrUnknownConnection, id)
	}
	var done []OperationResult
	for _, op := range []*operation{t.ops.gathers[id], t.ops.outputs["c:"+id], t.ops.records["c:"+id], t.ops.detects["c:"+id]} {
		if op != nil && (opID == "" || op.id == opID) {
			done = append(done, t.finishLocked(op, TermUserStop))
		}
	}
	if opID != "" && len(done) == 0 {
		if op := t.ops.ops[opID]; op != nil && op.connID == "" && op.confID != "" {
			done = append(done, t.finishLocked(op, TermUserStop)) // a conference's play, named by its id
		} else {
			t.mu.Unlock()
			return nil, fmt.Errorf("%w: OperationId %q is not running on %s", ErrInvalidParam, opID, id)
		}
	}
	t.mu.Unlock()
	t.announceOps(done)
	return done, nil
}

// digitArrived queues a digit for the engine; it never blocks on the
// table (it runs on media goroutines).
func (t *Table) digitArrived(connID string, digit byte) {
	t.ops.qmu.Lock()
	t.ops.queue = append(t.ops.queue, digitIn{connID, digit})
	start := !t.ops.draining
	t.ops.draining = true
	t.ops.qmu.Unlock()
	if start {
		go t.drainDigits()
	}
}

// drainDigits feeds queued digits to the engine in order, then ends.
func (t *Table) drainDigits() {
	for {
		t.ops.qmu.Lock()
		if len(t.ops.queue) == 0 {
			t.ops.draining = false
			t.ops.qmu.Unlock()
			return
		}
		d := t.ops.queue[0]
		t.ops.queue = t.ops.queue[1:]
		t.ops.qmu.Unlock()
		t.digit(d.connID, d.digit)
	}
}

// digit gives a digit to the connection's gather, or buffers it.
func (t *Table) digit(connID string, d byte) {
	var done []OperationResult
	t.mu.Lock()
	if _, ok := t.conns[connID]; !ok {
		t.mu.Unlock()
		return // released meanwhile
	}
	done = append(done, t.outputDigitLocked(connID, d)...)
	if op := t.ops.gathers[connID]; op != nil {
		if r, ended := t.addDigitLocked(op, d); ended {
			done = append(done, r)
		} else {
			t.armInterDigitLocked(op)
		}
	} else {
		b := append(t.ops.buf[connID], d)
		if len(b) > digitBufferMax {
			b = b[len(b)-digitBufferMax:]
		}
		t.ops.buf[connID] = b
	}
	t.mu.Unlock()
	t.announceOps(done)
}

// addDigitLocked adds d to op and ends op if a condition is met. Caller holds mu.
func (t *Table) addDigitLocked(op *operation, d byte) (OperationResult, bool) {
	op.digits = append(op.digits, d)
	switch {
	case op.p.TermDigit >= 0 && int(d) == op.p.TermDigit:
		return t.finishLocked(op, TermDigit), true
	case op.p.MaxDigits > 0 && len(op.digits) >= op.p.MaxDigits:
		return t.finishLocked(op, TermMaxDigits), true
	}
	return OperationResult{}, false
}

// armInterDigitLocked (re)starts the inter-digit timer once a digit came.
// Caller holds mu.
func (t *Table) armInterDigitLocked(op *operation) {
	if op.p.InterDigit <= 0 || len(op.digits) == 0 {
		return
	}
	if op.interTimer != nil {
		op.interTimer.Stop()
	}
	op.interTimer = time.AfterFunc(op.p.InterDigit, func() { t.expire(op, TermInterDigit) })
}

// expire ends op by a timer, unless it ended already.
func (t *Table) expire(op *operation, cond string) {
	t.mu.Lock()
	if t.ops.ops[op.id] != op {
		t.mu.Unlock()
		return
	}
	r := t.finishLocked(op, cond)
	t.mu.Unlock()
	t.announceOps([]OperationResult{r})
}

// finishLocked ends op once and says how. Caller holds mu.
func (t *Table) finishLocked(op *operation, cond string) OperationResult {
	delete(t.ops.ops, op.id)
	t.forgetLocked(StateOp, op.id)
	if t.ops.gathers[op.connID] == op {
		delete(t.ops.gathers, op.connID)
	}
	if op.key != "" && t.ops.outputs[op.key] == op {
		delete(t.ops.outputs, op.key)
		if cond != TermEOD && op.stop != nil {
			op.stop()
		}
	}
	if op.record && t.ops.records[op.key] == op {
		delete(t.ops.records, op.key)
		op.stop()
	}
	if op.detect && t.ops.detects[op.key] == op {
		delete(t.ops.detects, op.key)
		op.stop()
	}
	for _, tm := range []*time.Timer{op.maxTimer, op.interTimer} {
		if tm != nil {
			tm.Stop()
		}
	}
	t.giveBackLocked(op)
	t.met.opsActive.WithLabelValues(op.action).Dec()
	term := cond
	if op.failed {
		term = "failed"
	}
	t.met.opsTotal.WithLabelValues(op.action, term).Inc()
	r := OperationResult{OperationID: op.id, Action: op.action, ConnectionID: op.connID, State: op.state,
		TerminationCondition: cond, Digits: digitKeys(op.digits), Elapsed: time.Since(op.started), Filename: op.filename}
	if c := t.conns[op.connID]; c != nil && c.conf != nil {
		r.ConferenceID = c.conf.id
	} else if op.confID != "" {
		r.ConferenceID = op.confID
	}
	return r
}

// stopConnOpsLocked ends c's operations with autostop and forgets its
// digits (the connection is being released). Caller holds mu.
func (t *Table) stopConnOpsLocked(c *conn) []OperationResult {
	delete(t.ops.buf, c.ID)
	var done []OperationResult
	for _, op := range []*operation{t.ops.gathers[c.ID], t.ops.outputs["c:"+c.ID], t.ops.records["c:"+c.ID], t.ops.detects["c:"+c.ID]} {
		if op != nil {
			done = append(done, t.finishLocked(op, TermAutoStop))
		}
	}
	return done
}

func (t *Table) announceOps(done []OperationResult) {
	for i := range done {
		t.announce(Event{Type: OperationComplete, Connection: Connection{ID: done[i].ConnectionID, ConferenceID: done[i].ConferenceID},
			ConferenceID: done[i].ConferenceID, Op: &done[i]})
	}
}

// digitKeys spells RFC 4733 codes as keys.
func digitKeys(ds []byte) string {
	const keys = "0123456789*#ABCD"
	b := make([]byte, len(ds))
	for i, d := range ds {
		if int(d) < len(keys) {
			b[i] = keys[d]
		} else {
			b[i] = '?'
		}
	}
	return string(b)
}
