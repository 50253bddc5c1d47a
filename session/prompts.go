package session

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mediagw/mediagw/audio"
)

// MediaConfig is the yaml section `media` (DESIGN §8).
type MediaConfig struct {
	Dir       string `yaml:"dir"`        // where Play finds prompts
	RecordDir string `yaml:"record_dir"` // where Record writes
	// CacheBytes bounds the decoded prompts kept in memory (16-bit
	// samples: 16 KB per second of audio).
	CacheBytes int `yaml:"cache_bytes"`
	// InbandDTMF says where in-band DTMF is listened for on G.711 legs
	// without telephone-events: "always" (every such leg: conference
	// members in their mixer, relayed and lone legs on their packets) or
	// "gather" (members, and other legs only while an operation that takes
	// digits runs on them).
	InbandDTMF string `yaml:"inband_dtmf"`
}

// In-band DTMF modes (media.inband_dtmf).
const (
	InbandAlways = "always"
	InbandGather = "gather"
)

// DefaultMediaConfig is the built-in `media` section.
func DefaultMediaConfig() MediaConfig {
	return MediaConfig{Dir: "media", RecordDir: "recordings", CacheBytes: 64 << 20, InbandDTMF: InbandAlways}
}

// Validate reports the first bad value, naming its key.
func (c MediaConfig) Validate() error {
	if c.CacheBytes < 0 {
		return fmt.Errorf("media.cache_bytes: must be >= 0")
	}
	switch c.InbandDTMF {
	case InbandAlways, InbandGather, "":
	default:
		return fmt.Errorf("media.inband_dtmf: %q is not always or gather", c.InbandDTMF)
	}
	return nil
}

// Errors of the file-based operations.
var (
	ErrFileOpen = &Error{30, "file open error"}
	ErrFileIO   = &Error{31, "file read or write error"}
)

// promptCache holds decoded prompts by path, bounded by bytes (a prompt
// that does not fit is decoded for its play and not kept).
type promptCache struct {
	mu    sync.Mutex
	max   int
	used  int
	files map[string][]int16
}

// resolve maps a prompt name to a file under dir, refusing names that
// escape it (after symlinks). The error names the file.
func resolveUnder(dir, name string) (string, error) {
	if name == "" || filepath.IsAbs(name) || strings.Contains(name, "\x00") {
		return "", fmt.Errorf("%w: file %q must be a relative name under the media directory", ErrInvalidParam, name)
	}
	clean := filepath.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%w: file %q escapes the media directory", ErrInvalidParam, name)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("%w: media directory %q: %v", ErrFileOpen, dir, err)
	}
	p := filepath.Join(root, clean)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrFileOpen, name, errors.Unwrap(err))
	}
	if real != root && !strings.HasPrefix(real, root+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: file %q escapes the media directory", ErrInvalidParam, name)
	}
	return real, nil
}

// load returns the decoded samples of prompt name under dir.
func (pc *promptCache) load(dir, name string) ([]int16, error) {
	path, err := resolveUnder(dir, name)
	if err != nil {
		return nil, err
	}
	pc.mu.Lock()
	if s, ok := pc.files[path]; ok {
		pc.mu.Unlock()
		return s, nil
	}
	pc.mu.Unlock()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFileOpen, name, errors.Unwrap(err))
	}
	defer f.Close()
	pcm, _, err := audio.ReadWAV(f)
	if errors.Is(err, audio.ErrFormat) {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidParam, name, err)
	} else if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFileIO, name, err)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.files == nil {
		pc.files = map[string][]int16{}
	}
	size := 2 * len(pcm)
	for k, v := range pc.files { // evict until it fits (any order: prompts are re-read cheaply)
		if pc.used+size <= pc.max {
			break
		}
		delete(pc.files, k)
		pc.used -= 2 * len(v)
	}
	if pc.used+size <= pc.max {
		pc.files[path] = pcm
		pc.used += size
	}
	return pcm, nil
}

// promptSource plays prompts one after another (confbridge.Source); it
// copies from the decoded samples and allocates nothing per frame.
type promptSource struct {
	prompts [][]int16
	i, pos  int
}

func (s *promptSource) Read(pcm []int16) bool {
	n := 0
	for n < len(pcm) && s.i < len(s.prompts) {
		p := s.prompts[s.i]
		c := copy(pcm[n:], p[s.pos:])
		n += c
		s.pos += c
		if s.pos >= len(p) {
			s.i++
			s.pos = 0
		}
	}
	clear(pcm[n:])
	return s.i < len(s.prompts)
}

// toneSource plays a Tone for a number of samples (forever when 0).
// toneSource plays a tone or a cadence of steps (PlayTone). Its tones are
// made when the operation starts: Read never allocates.
type toneSource struct {
	steps  []toneStep
	i, pos int  // step, samples of it played
	left   int  // samples until Duration ends it
	inf    bool // no Duration
	rounds int  // rounds left (Repeat; 0 = unbounded)
}

type toneStep struct {
	tone *audio.Tone // nil: silence
	n    int         // samples
}

func newToneSource(p ToneParams) *toneSource {
	s := &toneSource{left: int(p.Duration * audio.SampleRate / time.Second), inf: p.Duration == 0, rounds: p.Repeat}
	if len(p.Steps) == 0 {
		s.steps = []toneStep{{tone: audio.NewTone(p.Freq1, p.Freq2, p.Level1, p.Level2), n: math.MaxInt}}
		return s
	}
	for _, st := range p.Steps {
		ts := toneStep{n: max(1, int(st.Duration*audio.SampleRate/time.Second))}
		if st.Freq1 != 0 || st.Freq2 != 0 {
			ts.tone = audio.NewTone(st.Freq1, st.Freq2, st.Level, st.Level)
		}
		s.steps = append(s.steps, ts)
	}
	return s
}

func (s *toneSource) Read(pcm []int16) bool {
	for n := 0; n < len(pcm); {
		if !s.inf && s.left <= 0 || s.i >= len(s.steps) {
			clear(pcm[n:])
			return false
		}
		st := &s.steps[s.i]
		take := min(len(pcm)-n, st.n-s.pos)
		if !s.inf {
			take = min(take, s.left)
			s.left -= take
		}
		if st.tone != nil {
			st.tone.Read(pcm[n : n+take])
		} else {
			clear(pcm[n : n+take])
		}
		n += take
		if s.pos += take; s.pos >= st.n {
			s.pos = 0
			if s.i++; s.i == len(s.steps) {
				s.i = 0
				if s.rounds > 0 {
					if s.rounds--; s.rounds == 0 {
						s.i = len(s.steps) // done
					}
				}
			}
		}
	}
	return (s.inf || s.left > 0) && s.i < len(s.steps)
}

// PromptLength is how long prompt name (under media.dir) plays; it loads
// it into the cache as Play would.
func (t *Table) PromptLength(name string) (time.Duration, error) {
	pcm, err := t.prompts.load(t.cfg.Media.Dir, name)
	if err != nil {
		return 0, err
	}
	return time.Duration(len(pcm)) * time.Second / audio.SampleRate, nil
}
