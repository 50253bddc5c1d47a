package session

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mediagw/mediagw/audio"
	"github.com/mediagw/mediagw/confbridge"
)

// DetectSilence and DetectNonSilence (DESIGN §8) watch what a connection
// says, frame by frame in the mixer (its conference's, or one lent to it):
// a frame below conference.talk_threshold (dBm0) is silence. The
// operation ends with "silence" once SilenceTime of it has run without a
// break, or "nonsilence" once NonSilenceTime of sound has; a running one
// of either kind on the connection is 14.

// TermNonSilence: DetectNonSilence heard its NonSilenceTime of sound
// (DetectSilence ends with TermSilence, as Record's TermCondSilence).
const TermNonSilence = "nonsilence"

// DetectSilence ends with "silence" after d of uninterrupted silence.
func (t *Table) DetectSilence(connID string, d time.Duration, state string) (string, error) {
	return t.detectLevel(connID, "DetectSilence", d, true, state)
}

// DetectNonSilence ends with "nonsilence" after d of uninterrupted sound.
func (t *Table) DetectNonSilence(connID string, d time.Duration, state string) (string, error) {
	return t.detectLevel(connID, "DetectNonSilence", d, false, state)
}

func (t *Table) detectLevel(connID, action string, d time.Duration, silence bool, state string) (string, error) {
	if connID == "" {
		return "", fmt.Errorf("%w: %s needs ConnectionId", ErrInsufficientParams, action)
	}
	if d <= 0 || d > time.Hour {
		return "", fmt.Errorf("%w: %s needs a time of 1 ms to 1 h", ErrInvalidParam, action)
	}
	t.mu.Lock()
	defer t.unlockAnnounce()
	key, c, cf, err := t.outputTargetLocked(connID, "")
	if err != nil {
		return "", err
	}
	if op := t.ops.detects[key]; op != nil {
		return "", fmt.Errorf("%w: %s on %s", ErrOperationActive, op.action, connID)
	}
	op := &operation{id: strconv.FormatUint(t.ops.next+1, 10), action: action, connID: connID,
		state: state, p: GatherParams{TermDigit: -1}, started: time.Now(), key: key, detect: true}
	mixer, err := t.targetMixerLocked(c, cf, op)
	if err != nil {
		return "", err
	}
	t.ops.next++
	cond := TermNonSilence
	if silence {
		cond = TermSilence
	}
	threshold := t.cfg.Conference.TalkThreshold
	need := int(d * audio.SampleRate / time.Second)
	var run int          // samples of the wanted kind in a row (mixer goroutine only)
	var done atomic.Bool // the end is handed off once
	tap := func(pcm []int16) {
		if done.Load() {
			return
		}
		if quiet := audio.LevelDBm0(pcm) < threshold; quiet == silence {
			run += len(pcm)
		} else {
			run = 0
		}
		if run >= need && done.CompareAndSwap(false, true) {
			go t.expire(op, cond) // not here: the tap runs under the mixer's lock
		}
	}
	if err := mixer.SetTap(connID, confbridge.TapLevel, tap); err != nil {
		t.giveBackLocked(op)
		return "", fmt.Errorf("%w: %v", ErrInternal, err)
	}
	op.stop = func() { _ = mixer.SetTap(connID, confbridge.TapLevel, nil) }
	t.ops.ops[op.id] = op
	t.saveOpLocked(op)
	t.ops.detects[key] = op
	t.met.opsActive.WithLabelValues(action).Inc()
	return op.id, nil
}
