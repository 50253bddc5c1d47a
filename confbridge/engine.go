package confbridge

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

const (
	sampleRate = 8000
	maxFrame   = 480 // samples in the longest tick (60 ms)
)

// Config is the yaml section `conference` as far as the mixer is concerned.
type Config struct {
	Ptime     time.Duration `yaml:"ptime"` // mix period; 10–60 ms in whole ms; default 20 ms
	JitterMin time.Duration `yaml:"-"`     // jitter buffer depth bounds; default 40 ms
	JitterMax time.Duration `yaml:"-"`     // default 60 ms
	Shards    int           `yaml:"-"`     // ticker goroutines; default 4×GOMAXPROCS
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("confbridge: invalid config")

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{Ptime: 20 * time.Millisecond, JitterMin: 40 * time.Millisecond, JitterMax: 60 * time.Millisecond}
}

// Validate reports a value NewEngine would replace by its default.
func (c Config) Validate() error {
	if c.Ptime != 0 && (c.Ptime < 10*time.Millisecond || c.Ptime > 60*time.Millisecond || c.Ptime%time.Millisecond != 0) {
		return fmt.Errorf("%w: ptime %v not a whole number of ms in 10ms..60ms", ErrConfig, c.Ptime)
	}
	if c.JitterMin < 0 || c.JitterMax < 0 || (c.JitterMax != 0 && c.JitterMin > c.JitterMax) || c.JitterMax > 200*time.Millisecond {
		return fmt.Errorf("%w: jitter depth %v..%v", ErrConfig, c.JitterMin, c.JitterMax)
	}
	return nil
}

func (c Config) normalized() Config {
	d := DefaultConfig()
	if c.Validate() != nil {
		return d
	}
	if c.Ptime == 0 {
		c.Ptime = d.Ptime
	}
	if c.JitterMin == 0 {
		c.JitterMin = d.JitterMin
	}
	if c.JitterMax == 0 {
		c.JitterMax = max(d.JitterMax, c.JitterMin)
	}
	if c.Shards <= 0 {
		// Four staggered shards per processor: each tick's burst of work
		// (mostly sends) is a quarter of the load, so received packets are
		// handled between bursts and no shard waits behind a long queue.
		c.Shards = 4 * runtime.GOMAXPROCS(0)
	}
	return c
}

func samplesOf(d time.Duration) int { return int(d * sampleRate / time.Second) }

// Engine is the tick scheduler shared by all bridges. A few shard goroutines
// each own a list of bridges and tick them at an absolute schedule
// (start + n·ptime), so thousands of conferences cost a few timers, never
// drift, and a tick that starts late is counted, not absorbed.
type Engine struct {
	cfg     Config
	k       int // samples per tick
	epoch   time.Time
	shards  []*shard
	next    atomic.Uint32
	wg      sync.WaitGroup
	closeMu sync.Mutex // guards closed
	closed  bool

	clock func() int64  // nil: time since epoch
	done  chan struct{} // closed by Close: wakes shards that wait for a bridge

	ticks atomic.Uint64 // bridge-ticks run
	late  atomic.Uint64 // bridge-ticks that started late or were skipped
}

type shard struct {
	eng    *Engine
	offset time.Duration
	src    tickSource    // nil when tests drive the ticks
	wake   chan struct{} // add signals a shard that had no bridge (cap 1)

	mu      sync.Mutex // guards bridges (copy-on-write; list is the published copy)
	bridges []*Bridge
	list    atomic.Pointer[[]*Bridge]

	hist [histBuckets]atomic.Uint64 // tick start lateness, 100 µs buckets
}

const (
	histBuckets = 201 // 0–20 ms in 100 µs steps; the last bucket is "more"
	histStep    = 100 * time.Microsecond
)

// NewEngine starts the shard goroutines. An invalid Config (see Validate)
// falls back to the defaults.
func NewEngine(cfg Config) *Engine { return newEngine(cfg, true) }

// newEngine builds an engine; without run no shard goroutine starts and
// tests drive ticks and the clock themselves.
func newEngine(cfg Config, run bool) *Engine {
	cfg = cfg.normalized()
	e := &Engine{cfg: cfg, k: samplesOf(cfg.Ptime), epoch: time.Now(), done: make(chan struct{})}
	for i := 0; i < cfg.Shards; i++ {
		// Stagger the shards over the period so their work does not pile up.
		s := &shard{eng: e, offset: cfg.Ptime * time.Duration(i) / time.Duration(cfg.Shards), wake: make(chan struct{}, 1)}
		s.list.Store(&[]*Bridge{})
		e.shards = append(e.shards, s)
		if run {
			s.src = newTickSource(cfg.Ptime+s.offset, cfg.Ptime)
			e.wg.Add(1)
			go s.run(s.src)
		}
	}
	return e
}

// Config returns the effective configuration.
func (e *Engine) Config() Config { return e.cfg }

// LateTicks counts bridge-ticks that started more than half a period after
// their due time, or were skipped because a shard fell behind.
func (e *Engine) LateTicks() uint64 { return e.late.Load() }

// Ticks counts bridge-ticks run or skipped; LateTicks()/Ticks() is the late ratio.
func (e *Engine) Ticks() uint64 { return e.ticks.Load() }

// TickLateness returns the q-quantile (0..1) of how late shard ticks started,
// over the engine's life (100 µs resolution, capped at 20 ms).
func (e *Engine) TickLateness(q float64) time.Duration {
	var h [histBuckets]uint64
	var total uint64
	for _, s := range e.shards {
		for i := range h {
			v := s.hist[i].Load()
			h[i] += v
			total += v
		}
	}
	if total == 0 {
		return 0
	}
	want := uint64(q * float64(total))
	var acc uint64
	for i, v := range h {
		acc += v
		if acc > want || acc == total {
			return time.Duration(i+1) * histStep
		}
	}
	return histBuckets * histStep
}

// Close stops the schedule. Bridges stay usable but are no longer ticked.
func (e *Engine) Close() {
	e.closeMu.Lock()
	if !e.closed {
		e.closed = true
		close(e.done)
		for _, s := range e.shards {
			if s.src != nil {
				s.src.close()
			}
		}
	}
	e.closeMu.Unlock()
	e.wg.Wait()
}

// NewBridge creates an empty bridge on one of the shards.
func (e *Engine) NewBridge(opts Options) *Bridge {
	s := e.shards[int(e.next.Add(1))%len(e.shards)]
	return newBridge(e, s, opts)
}

// now is the engine clock in ns (monotonic); tests replace it.
func (e *Engine) now() int64 {
	if e.clock != nil {
		return e.clock()
	}
	return int64(time.Since(e.epoch))
}

func (s *shard) add(b *Bridge) {
	s.mu.Lock()
	first := len(s.bridges) == 0
	s.bridges = append(s.bridges, b)
	l := append([]*Bridge(nil), s.bridges...)
	s.list.Store(&l)
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default: // already signalled
		}
	}
}

func (s *shard) remove(b *Bridge) {
	s.mu.Lock()
	for i, x := range s.bridges {
		if x == b {
			last := len(s.bridges) - 1
			s.bridges[i] = s.bridges[last]
			s.bridges[last] = nil
			s.bridges = s.bridges[:last]
			break
		}
	}
	l := append([]*Bridge(nil), s.bridges...)
	s.list.Store(&l)
	s.mu.Unlock()
}

// run ticks the shard's bridges until the engine closes. A shard with no
// bridge stops its timer and sleeps until add wakes it: an idle gateway's
// shards (4 per core) would otherwise wake it 50 times a second each for
// nothing. It resumes on its own schedule (the same phase), so a bridge's
// first tick comes within one period of its first member, as before.
func (s *shard) run(src tickSource) {
	e := s.eng
	defer e.wg.Done()
	period := e.cfg.Ptime
	for {
		if len(*s.list.Load()) == 0 {
			src.pause()
			select {
			case <-s.wake: // a stale signal costs one empty tick at most
			case <-e.done:
				return
			}
			src.resume()
		}
		late, missed, ok := src.wait()
		if !ok {
			return
		}
		list := *s.list.Load()
		n := uint64(len(list))
		// Up to two missed periods are caught up (run now, back to back);
		// more are skipped. Every one of them counts as late, for every
		// bridge of the shard.
		catchUp := min(missed, 2)
		if skipped := uint64(missed - catchUp); skipped > 0 {
			e.ticks.Add(n * skipped)
			e.late.Add(n * skipped)
			s.hist[histBuckets-1].Add(skipped)
		}
		now := e.now()
		for i := catchUp; i >= 0; i-- {
			l := late + time.Duration(i)*period
			s.record(l)
			e.ticks.Add(n)
			if l > period/2 {
				e.late.Add(n)
			}
			// Caught-up ticks carry the time they were due, so each
			// member's stream advances one frame per tick.
			t := now - int64(time.Duration(i)*period)
			for _, br := range list {
				br.tick(t)
			}
		}
	}
}

func (s *shard) record(late time.Duration) {
	b := int(late / histStep)
	if b < 0 {
		b = 0
	}
	if b >= histBuckets {
		b = histBuckets - 1
	}
	s.hist[b].Add(1)
}

// tickSource paces a shard.
type tickSource interface {
	// wait blocks until the next tick is due and returns how late it is
	// woken and how many whole periods were missed before it; ok is false
	// once the source is closed.
	wait() (late time.Duration, missed int, ok bool)
	// pause stops the ticks until resume, which starts them again at the
	// first due time of the schedule still ahead (no period counts as missed).
	pause()
	resume()
	close()
}

// timerSource paces with a Go timer at an absolute schedule. The runtime
// wakes timers with up to a millisecond of slack when the process is idle,
// so Linux uses timerSourceFD instead where it can.
type timerSource struct {
	t      *time.Timer
	due    time.Time
	period time.Duration
	stop   chan struct{}
	once   sync.Once
}

func newTimerSource(first time.Time, period time.Duration) *timerSource {
	return &timerSource{t: time.NewTimer(time.Until(first)), due: first, period: period, stop: make(chan struct{})}
}

func (s *timerSource) wait() (time.Duration, int, bool) {
	select {
	case <-s.t.C:
	case <-s.stop:
		return 0, 0, false
	}
	late := time.Since(s.due)
	missed := 0
	if late >= s.period {
		missed = int(late / s.period)
		late -= time.Duration(missed) * s.period
	}
	s.due = s.due.Add(time.Duration(missed+1) * s.period)
	s.t.Reset(time.Until(s.due))
	return late, missed, true
}

func (s *timerSource) pause() { s.t.Stop() }

func (s *timerSource) resume() {
	if now := time.Now(); !s.due.After(now) {
		s.due = s.due.Add((now.Sub(s.due)/s.period + 1) * s.period)
	}
	s.t.Reset(time.Until(s.due))
}

func (s *timerSource) close() {
	s.once.Do(func() {
		close(s.stop)
		s.t.Stop()
	})
}
