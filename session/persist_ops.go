package session

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/mediagw/mediagw/audio"
	"github.com/mediagw/mediagw/confbridge"
)

// Media operations across a restart (issue 13). Every running operation is
// kept (kind "op") until it ends. At the restore:
//   - a Record whose connection or conference came back goes on, under the
//     same OperationId, into the same file: what was written before the
//     crash stays, the header is repaired (audio.AppendWAV), and MaxTime
//     counts from the original start;
//   - every other operation (Play, PlayTone, SendDigits, GatherDigits,
//     DetectSilence...) is not restarted: it completes with
//     TerminationCondition autostop and ResultCode 9 (server in an
//     unexpected state), announced once the fronts listen to the table
//     (AnnounceRestored). A prompt restarted from its beginning would be a
//     surprise to the caller; an application that wants it again plays it
//     again;
//   - a Record whose target is gone completes the same way.

// StateOp is the kind of the persisted media operations.
const StateOp = "op"

// CodeRestarted is the ResultCode of an operation a restart interrupted.
const CodeRestarted = 9

type opRecord struct {
	V       int       `json:"v"`
	ID      string    `json:"id"`
	Action  string    `json:"action"`
	Conn    string    `json:"conn,omitempty"`
	Conf    string    `json:"conf,omitempty"` // a conference's output (Play, Record of the mix)
	State   string    `json:"state,omitempty"`
	Started time.Time `json:"started"`
	// Record
	Filename   string `json:"filename,omitempty"`
	Encoding   string `json:"encoding,omitempty"`
	MaxTimeMs  int64  `json:"max_time_ms,omitempty"`
	SilenceMs  int64  `json:"silence_ms,omitempty"`
	TermDigit  int    `json:"term_digit"`
	ConfTarget bool   `json:"conf_target,omitempty"` // recording the conference's mix
}

// saveOpLocked queues op's record (and the OperationId counter). Caller holds mu.
func (t *Table) saveOpLocked(op *operation) {
	if t.cfg.State == nil {
		return
	}
	r := opRecord{V: stateVersion, ID: op.id, Action: op.action, Conn: op.connID, Conf: op.confID, State: op.state,
		Started: op.started, TermDigit: -1}
	if rp := op.rec; rp != nil {
		r.Filename, r.Encoding = op.filename, rp.Encoding.String()
		r.MaxTimeMs, r.SilenceMs, r.TermDigit = rp.MaxTime.Milliseconds(), rp.Silence.Milliseconds(), rp.TermDigit
		r.ConfTarget = op.connID == ""
		if r.ConfTarget {
			r.Conf = op.key[2:]
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	t.cfg.State.Put(StateOp, op.id, b)
	t.saveIDsLocked()
}

// restoreOps resumes the recordings and keeps the other operations'
// completions for AnnounceRestored. Called by Restore, after the
// conferences.
func (t *Table) restoreOps(st StateReader, rep *RestoreReport) error {
	var bad [][2]string
	ops, err := readRecords(st, StateOp, &bad, func(r opRecord) (int, string) { return r.V, r.ID })
	if err != nil {
		return err
	}
	slices.SortFunc(ops, func(a, b opRecord) int { return cmpID(a.ID, b.ID) })
	t.mu.Lock()
	for _, k := range bad {
		t.forgetLocked(k[0], k[1])
	}
	for _, r := range ops {
		if n, err := strconv.ParseUint(r.ID, 10, 64); err == nil && n > t.ops.next {
			t.ops.next = n
		}
	}
	t.mu.Unlock()
	for _, r := range ops {
		if r.Action == "Record" {
			if err := t.resumeRecord(r); err == nil {
				rep.Recordings++
				continue
			} else {
				t.log.WithError(err).WithField("op_id", r.ID).Warn("recording not resumed")
			}
		}
		res := OperationResult{OperationID: r.ID, Action: r.Action, ConnectionID: r.Conn, ConferenceID: r.Conf, State: r.State,
			TerminationCondition: TermAutoStop, ResultCode: CodeRestarted, Elapsed: time.Since(r.Started)}
		if r.Action == "Record" {
			res.Filename = r.Filename
		}
		t.mu.Lock()
		t.forgetLocked(StateOp, r.ID)
		t.restoredOps = append(t.restoredOps, res)
		t.mu.Unlock()
		rep.Interrupted++
	}
	return nil
}

// resumeRecord starts r's recording again under its OperationId, appending
// to its file.
func (t *Table) resumeRecord(r opRecord) error {
	enc, ok := audio.ParseEncoding(r.Encoding)
	if !ok {
		return fmt.Errorf("encoding %q", r.Encoding)
	}
	if r.Filename == "" || filepath.Base(r.Filename) != r.Filename {
		return fmt.Errorf("file name %q", r.Filename)
	}
	p := RecordParams{Filename: r.Filename, Encoding: enc, MaxTime: time.Duration(r.MaxTimeMs) * time.Millisecond,
		Silence: time.Duration(r.SilenceMs) * time.Millisecond, TermDigit: r.TermDigit, State: r.State}
	connID, confID := r.Conn, ""
	if r.ConfTarget {
		connID, confID = "", r.Conf
	}
	_, err := t.record(connID, confID, p, &resumed{id: r.ID, started: r.Started})
	return err
}

// resumed names a recording that goes on after a restart.
type resumed struct {
	id      string
	started time.Time
}

// AnnounceRestored announces the completions of the operations the
// restart interrupted (OperationComplete, ResultCode 9): call it once the
// fronts have subscribed to the table, before they serve.
func (t *Table) AnnounceRestored() {
	t.mu.Lock()
	done := t.restoredOps
	t.restoredOps = nil
	t.mu.Unlock()
	t.announceOps(done)
}

// recordTap sets or clears the recording tap of a member or of the mix.
func recordTap(mixer *confbridge.Bridge, connID string, tap func([]int16)) error {
	if connID != "" {
		return mixer.SetTap(connID, confbridge.TapRecord, tap)
	}
	return mixer.SetMixTap(tap)
}
