package session

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mediagw/mediagw/audio"
)

// Record writes what a connection says (its decoded frames), or a whole
// conference's mix, into a WAV file under media.record_dir. The mixer's
// tap copies each frame into a bounded queue and never waits; a writer
// goroutine owns the file: it creates it (header first), appends, patches
// the header's sizes every second and at the end, and measures silence.
// A file that cannot be created or written ends the operation as
// Record_Failed with ResultCode 31; the mixer never stalls on the disk.

// RecordParams are Record's parameters.
type RecordParams struct {
	Filename  string // under media.record_dir; "" = rec-<OperationId>-<time>.wav
	Encoding  audio.Encoding
	MaxTime   time.Duration
	Silence   time.Duration // TermCondSilence: this long below the threshold ends it
	TermDigit int           // -1 = none
	State     string
}

// recordSilenceDBm0: frames below it count as silence.
const recordSilenceDBm0 = -40.0

// recordQueue is the frames a recording buffers (5 s at 20 ms).
const recordQueue = 250

type recFrame struct {
	n   int
	pcm [480]int16
}

type recording struct {
	frames  chan recFrame
	dropped atomic.Uint64
}

// tap runs on the mixer goroutine: copy and go.
func (r *recording) tap(pcm []int16) {
	var f recFrame
	f.n = copy(f.pcm[:], pcm)
	select {
	case r.frames <- f:
	default:
		r.dropped.Add(1)
	}
}

// Record starts recording connID (what it sends) or, with connID empty,
// the mix of conference confID.
func (t *Table) Record(connID, confID string, p RecordParams) (string, error) {
	return t.record(connID, confID, p, nil)
}

// record is Record; with res, a recording resumed after a restart (its
// OperationId, its start, its file appended to).
func (t *Table) record(connID, confID string, p RecordParams, res *resumed) (string, error) {
	if p.MaxTime < 0 || p.Silence < 0 || p.TermDigit > 15 {
		return "", fmt.Errorf("%w: Record termination conditions", ErrInvalidParam)
	}
	name := p.Filename
	if name != "" {
		if filepath.IsAbs(name) || filepath.Clean(name) != name || name == ".." || len(name) > 255 ||
			filepath.Base(name) != name || filepath.Ext(name) != ".wav" {
			return "", fmt.Errorf("%w: Filename %q must be a plain name ending in .wav (no directories)", ErrInvalidParam, name)
		}
	}
	t.mu.Lock()
	defer t.unlockAnnounce()
	key, c, cf, err := t.outputTargetLocked(connID, confID)
	if err != nil {
		return "", err
	}
	if t.ops.records[key] != nil {
		return "", fmt.Errorf("%w: Record on %s", ErrOperationActive, key[2:])
	}
	op := &operation{id: strconv.FormatUint(t.ops.next+1, 10), action: "Record", connID: connID,
		state: p.State, p: GatherParams{TermDigit: p.TermDigit, MaxTime: p.MaxTime}, started: time.Now(), key: key, record: true, rec: &p}
	if res != nil {
		op.id, op.started = res.id, res.started
	}
	mixer, err := t.targetMixerLocked(c, cf, op)
	if err != nil {
		return "", err
	}
	if res == nil {
		t.ops.next++
	}
	if name == "" {
		name = fmt.Sprintf("rec-%s-%s.wav", op.id, op.started.UTC().Format("20060102T150405Z"))
	}
	op.filename = name
	rec := &recording{frames: make(chan recFrame, recordQueue)}
	err = recordTap(mixer, connID, rec.tap)
	op.stop = func() { _ = recordTap(mixer, connID, nil); close(rec.frames) }
	if err != nil {
		t.giveBackLocked(op)
		return "", fmt.Errorf("%w: %v", ErrInternal, err)
	}
	t.ops.ops[op.id] = op
	t.ops.records[key] = op
	t.met.opsActive.WithLabelValues(op.action).Inc()
	t.saveOpLocked(op)
	if p.MaxTime > 0 {
		op.maxTimer = time.AfterFunc(max(p.MaxTime-time.Since(op.started), 0), func() { t.expire(op, TermMaxTime) })
	}
	go t.writeRecording(op, rec, filepath.Join(t.cfg.Media.RecordDir, name), p, res != nil)
	return op.id, nil
}

// writeRecording is the file's owner. It ends when the frames channel is
// closed (the operation ended) or ends the operation itself (silence, a
// disk error).
func (t *Table) writeRecording(op *operation, rec *recording, path string, p RecordParams, resume bool) {
	sampleBytes := 1
	if p.Encoding == audio.PCM16 {
		sampleBytes = 2
	}
	fail := func(err error) {
		t.log.WithError(err).WithField("op_id", op.id).WithField("file", path).Warn("recording failed")
		t.fail(op, fmt.Errorf("%w: %v", ErrFileIO, err))
		for range rec.frames { // until the stop closes it
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		fail(err)
		return
	}
	create := audio.CreateWAV
	if resume {
		create = audio.AppendWAV
	}
	w, f, err := create(path, p.Encoding)
	if err != nil {
		fail(err)
		return
	}
	defer f.Close()
	sync := time.NewTicker(time.Second)
	defer sync.Stop()
	silentFor := time.Duration(0)
	for {
		select {
		case fr, ok := <-rec.frames:
			if !ok {
				if err := w.Close(); err != nil {
					t.log.WithError(err).WithField("file", path).Warn("recording: final header")
				}
				return
			}
			pcm := fr.pcm[:fr.n]
			if err := w.Write(pcm); err != nil {
				fail(err)
				return
			}
			t.met.recBytes.Add(float64(len(pcm) * sampleBytes))
			if p.Silence > 0 {
				if audio.LevelDBm0(pcm) < recordSilenceDBm0 {
					silentFor += time.Duration(fr.n) * time.Second / audio.SampleRate
					if silentFor >= p.Silence {
						t.expire(op, TermSilence)
					}
				} else {
					silentFor = 0
				}
			}
		case <-sync.C:
			if err := w.Sync(); err != nil {
				fail(err)
				return
			}
		}
	}
}

// TermSilence: a Record heard TermCondSilence of silence.
const TermSilence = "silence"

// fail ends op with a failure (ResultCode of err), unless it ended already.
func (t *Table) fail(op *operation, err error) {
	t.mu.Lock()
	if t.ops.ops[op.id] != op {
		t.mu.Unlock()
		return
	}
	op.failed = true
	r := t.finishLocked(op, TermEOD)
	r.ResultCode = ResultCode(err)
	t.mu.Unlock()
	t.announceOps([]OperationResult{r})
}
