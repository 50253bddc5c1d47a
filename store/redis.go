package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// The Redis layout, every key under the configured prefix P:
//
//	P owner             the owning gateway's token "<host>/<pid>/<random>", PX OwnerTTL
//	P schema            SchemaVersion
//	P kinds             set of kinds ever written
//	P idx:<kind>        set of the ids of kind (read with SSCAN: never KEYS)
//	P obj:<kind>:<id>   the record (record.go)
//	P ctrs              set of counter names
//	P ctr:<name>        counter high-water mark
//
// Every write batch is a pipeline of scripts that each check the owner token
// before touching anything, so a gateway that lost its claim cannot write
// over the one that took it.

// commitScript: KEYS[1] owner, KEYS[2] kinds, then per op obj and idx keys;
// ARGV[1] token, then per op: "P"|"D", id, kind, record.
var commitScript = `
local o = redis.call('GET', KEYS[1])
if o == false then return redis.error_reply('NOOWNER the owner key is gone') end
if o ~= ARGV[1] then return redis.error_reply('NOTOWNER held by ' .. o) end
local n = (#ARGV - 1) / 4
for i = 0, n - 1 do
  local a, k = 2 + i * 4, 3 + i * 2
  if ARGV[a] == 'P' then
    redis.call('SET', KEYS[k], ARGV[a + 3])
    redis.call('SADD', KEYS[k + 1], ARGV[a + 1])
    redis.call('SADD', KEYS[2], ARGV[a + 2])
  else
    redis.call('DEL', KEYS[k])
    redis.call('SREM', KEYS[k + 1], ARGV[a + 1])
  end
end
return n`

// reserveScript: KEYS owner, ctr:<name>, ctrs; ARGV token, name, floor, n.
var reserveScript = redis.NewScript(`
local o = redis.call('GET', KEYS[1])
if o == false then return redis.error_reply('NOOWNER the owner key is gone') end
if o ~= ARGV[1] then return redis.error_reply('NOTOWNER held by ' .. o) end
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
local floor = tonumber(ARGV[3])
if v < floor then v = floor end
v = v + tonumber(ARGV[4])
redis.call('SET', KEYS[2], string.format('%d', v))
redis.call('SADD', KEYS[3], ARGV[2])
return string.format('%d', v)`)

// claimScript: KEYS owner; ARGV token, ttl ms, the stale token we may replace
// (or ""). Returns 1 renewed, 2 claimed (the key was absent or stale), or the
// holder's token.
var claimScript = redis.NewScript(`
local o = redis.call('GET', KEYS[1])
if o == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if o == false or (ARGV[3] ~= '' and o == ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2
end
return o`)

// releaseScript: KEYS owner; ARGV token.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

const (
	redisOpsPerScript = 128
	redisTimeout      = 5 * time.Second
)

// Redis is the shared store: a key per object under a prefix.
type Redis struct {
	c        *redis.Client
	cfg      RedisConfig
	p        string // prefix
	token    string
	ttl      time.Duration
	readOnly bool
	log      *logrus.Entry
	w        *writer
	ctr      *counters

	claimMu sync.Mutex // serialises claim (heartbeat and writer)

	syncMu     sync.Mutex // serialises reclaim; guards runID and needResync
	runID      string     // the server's run_id when this gateway last wrote everything
	needResync bool

	hiMu sync.Mutex        // guards his
	his  map[string]uint64 // highest mark reserved per counter, rewritten after Redis lost it

	stop chan struct{}
	done chan struct{}
}

// OpenRedis connects, checks the schema and claims the prefix. Redis down
// is ErrUnavailable; a prefix held by a live gateway is ErrOwned.
func OpenRedis(cfg RedisConfig, opt Options) (Store, error) {
	opt.defaults()
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{opt.Log}) })
	c := redis.NewClient(&redis.Options{
		Addr:            cfg.Addr,
		Password:        cfg.Password,
		DB:              cfg.DB,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     redisTimeout,
		WriteTimeout:    redisTimeout,
		MaxRetries:      -1, // the writer retries, with the whole batch
		PoolSize:        4,
		DisableIdentity: true,
	})
	r := &Redis{c: c, cfg: cfg, p: cfg.Prefix, ttl: opt.OwnerTTL, readOnly: opt.ReadOnly, log: opt.Log,
		his: map[string]uint64{}, stop: make(chan struct{}), done: make(chan struct{})}
	fail := func(err error) (Store, error) {
		c.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fail(fmt.Errorf("%w: redis %s: %v", ErrUnavailable, cfg.Addr, err))
	}
	if opt.ReadOnly {
		if err := r.checkSchema(ctx, false); err != nil {
			return fail(err)
		}
		r.ctr = newCounters(r.reserve, opt.CounterBlock)
		close(r.done)
		return r, nil
	}
	host, _ := os.Hostname()
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	r.token = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(rnd[:]))
	var err error
	if _, err = r.claim(ctx, true); err != nil {
		return fail(err)
	}
	if err := r.checkSchema(ctx, true); err != nil {
		releaseScript.Run(ctx, c, []string{r.p + "owner"}, r.token)
		return fail(err)
	}
	if r.runID, err = r.serverRunID(ctx); err != nil {
		releaseScript.Run(ctx, c, []string{r.p + "owner"}, r.token)
		return fail(err)
	}
	r.w = newWriter(r, opt, true)
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	if err := r.seedMirror(sctx); err != nil {
		r.w.close()
		releaseScript.Run(ctx, c, []string{r.p + "owner"}, r.token)
		return fail(err)
	}
	r.ctr = newCounters(r.reserve, opt.CounterBlock)
	go r.heartbeat()
	return r, nil
}

// checkSchema refuses another schema; write stamps an empty prefix.
func (r *Redis) checkSchema(ctx context.Context, write bool) error {
	v, err := r.c.Get(ctx, r.p+"schema").Result()
	switch {
	case errors.Is(err, redis.Nil):
		n, err := r.c.Exists(ctx, r.p+"kinds", r.p+"ctrs").Result()
		if err != nil {
			return fmt.Errorf("%w: redis %s: %v", ErrUnavailable, r.cfg.Addr, err)
		}
		if n > 0 {
			return fmt.Errorf("%w: redis %s prefix %q holds data without a schema version (left untouched)", ErrSchema, r.cfg.Addr, r.p)
		}
		if !write {
			return fmt.Errorf("%w: redis %s prefix %q is empty", ErrNotFound, r.cfg.Addr, r.p)
		}
		if err := r.c.Set(ctx, r.p+"schema", SchemaVersion, 0).Err(); err != nil {
			return r.unavailable(err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("%w: redis %s: %v", ErrUnavailable, r.cfg.Addr, err)
	case v != strconv.Itoa(SchemaVersion):
		return fmt.Errorf("%w: redis %s prefix %q has schema %s, this build reads %d (left untouched)", ErrSchema, r.cfg.Addr, r.p, v, SchemaVersion)
	}
	return nil
}

// claim takes or renews the owner key. At open, a key left by an earlier
// process of this host that is no longer running is taken over, so a gateway restarted after a
// crash need not wait for the key to expire. It reports whether the key had
// to be created again (Redis lost it: a restart without persistence, or an
// expiry while unreachable).
func (r *Redis) claim(ctx context.Context, atOpen bool) (bool, error) {
	r.claimMu.Lock()
	defer r.claimMu.Unlock()
	stale := ""
	for range 2 {
		res, err := claimScript.Run(ctx, r.c, []string{r.p + "owner"}, r.token, r.ttl.Milliseconds(), stale).Result()
		if err != nil {
			return false, fmt.Errorf("%w: redis %s: %v", ErrUnavailable, r.cfg.Addr, err)
		}
		switch v := res.(type) {
		case int64:
			return v == 2, nil
		case string:
			if atOpen && stale == "" && staleOwner(v) {
				stale = v
				continue
			}
			return false, fmt.Errorf("%w: redis %s prefix %q is held by %s (its claim lapses %v after that gateway stops)", ErrOwned, r.cfg.Addr, r.p, v, r.ttl)
		}
	}
	return false, fmt.Errorf("%w: redis %s prefix %q: the claim changed hands while taking it over", ErrOwned, r.cfg.Addr, r.p)
}

// staleOwner: the token names this host and a process that is gone (or pid 1
// when this is pid 1: an earlier incarnation of a container).
func staleOwner(token string) bool {
	host, rest, ok := strings.Cut(token, "/")
	me, _ := os.Hostname()
	if !ok || host != me {
		return false
	}
	pidS, _, _ := strings.Cut(rest, "/")
	pid, err := strconv.Atoi(pidS)
	if err != nil || pid <= 0 {
		return false
	}
	if pid == 1 {
		// The init of a container: stale if this is pid 1 too (the
		// container restarted under the same hostname).
		return os.Getpid() == 1
	}
	return pid != os.Getpid() && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// reclaim renews the claim, and notices a Redis that restarted: the owner
// key had to be created again (it came back empty, or the claim expired
// while unreachable) or the server's run_id changed (it came back from an
// older snapshot). Either way everything this gateway holds is written again
// (objects from the writer's mirror, counter marks) and objects it deleted
// meanwhile are deleted again. A resync that fails half way is done again by
// the next reclaim.
func (r *Redis) reclaim() error {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	recreated, err := r.claim(ctx, false)
	if err != nil {
		return err
	}
	id, err := r.serverRunID(ctx)
	if err != nil {
		return err
	}
	if recreated || id != r.runID {
		r.needResync = true
	}
	if !r.needResync {
		return nil
	}
	if err := r.c.SetNX(ctx, r.p+"schema", SchemaVersion, 0).Err(); err != nil {
		return r.unavailable(err)
	}
	r.hiMu.Lock()
	his := make(map[string]uint64, len(r.his))
	for k, v := range r.his {
		his[k] = v
	}
	r.hiMu.Unlock()
	for name, hi := range his {
		if _, err := r.reserveOnce(ctx, name, hi, 0); err != nil {
			return err
		}
	}
	kinds, err := r.c.SMembers(ctx, r.p+"kinds").Result()
	if err != nil {
		return r.unavailable(err)
	}
	stale := 0
	for _, kind := range kinds {
		ids, err := r.scanIDs(ctx, kind)
		if err != nil {
			return err
		}
		stale += r.w.sweep(kind, ids)
	}
	n := r.w.resync()
	r.runID, r.needResync = id, false
	r.log.WithField("objects", n).WithField("stale", stale).WithField("counters", len(his)).
		Warn("redis restarted or lost this gateway's claim: writing its state again")
	return nil
}

// serverRunID is the server's run_id: it changes when Redis restarts.
func (r *Redis) serverRunID(ctx context.Context) (string, error) {
	info, err := r.c.Info(ctx, "server").Result()
	if err != nil {
		return "", r.unavailable(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "run_id:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%w: redis %s: INFO server has no run_id", ErrUnavailable, r.cfg.Addr)
}

// scanIDs lists the ids in kind's index.
func (r *Redis) scanIDs(ctx context.Context, kind string) ([]string, error) {
	var all []string
	var cursor uint64
	for {
		ids, next, err := r.c.SScan(ctx, r.p+"idx:"+kind, cursor, "", 512).Result()
		if err != nil {
			return nil, r.unavailable(err)
		}
		all = append(all, ids...)
		if cursor = next; cursor == 0 {
			return all, nil
		}
	}
}

func (r *Redis) heartbeat() {
	defer close(r.done)
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if err := r.reclaim(); errors.Is(err, ErrOwned) {
			r.w.setLost(err) // the writer logs it
			return
		}
		// Unreachable: the writer reports its own failures; try again.
	}
}

func (r *Redis) objKey(kind, id string) string { return r.p + "obj:" + kind + ":" + id }

func (r *Redis) commit(ops []op) error {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	pipe := r.c.Pipeline()
	var cmds []*redis.Cmd
	for start := 0; start < len(ops); start += redisOpsPerScript {
		chunk := ops[start:min(start+redisOpsPerScript, len(ops))]
		keys := make([]string, 0, 2+2*len(chunk))
		keys = append(keys, r.p+"owner", r.p+"kinds")
		args := make([]any, 0, 1+4*len(chunk)) // kept by the pipeline until Exec
		args = append(args, r.token)
		for i := range chunk {
			o := &chunk[i]
			keys = append(keys, r.objKey(o.kind, o.id), r.p+"idx:"+o.kind)
			if o.del {
				args = append(args, "D", o.id, o.kind, "")
			} else {
				args = append(args, "P", o.id, o.kind, appendRecord(make([]byte, 0, recordHeader+len(o.value)), o.value))
			}
		}
		cmds = append(cmds, pipe.Eval(ctx, commitScript, keys, args...))
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		switch cerr := c.Err(); {
		case cerr == nil:
		case redis.HasErrorPrefix(cerr, "NOTOWNER"):
			return fmt.Errorf("%w: redis %s prefix %q: %v", ErrOwned, r.cfg.Addr, r.p, cerr)
		case redis.HasErrorPrefix(cerr, "NOOWNER"):
			if rerr := r.reclaim(); rerr != nil {
				return rerr
			}
			return fmt.Errorf("redis %s: the owner key was gone (claimed again): %v", r.cfg.Addr, cerr)
		}
	}
	return fmt.Errorf("%w: redis %s: %v", ErrUnavailable, r.cfg.Addr, err)
}

func (r *Redis) reserve(name string, floor, n uint64) (uint64, error) {
	if r.readOnly {
		return 0, fmt.Errorf("redis %s: opened read-only", r.cfg.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	hi, err := r.reserveOnce(ctx, name, floor, n)
	if redis.HasErrorPrefix(err, "NOOWNER") {
		if err = r.reclaim(); err == nil {
			hi, err = r.reserveOnce(ctx, name, floor, n)
		}
	}
	if err != nil {
		if redis.HasErrorPrefix(err, "NOTOWNER") {
			return 0, fmt.Errorf("%w: redis %s prefix %q: %v", ErrOwned, r.cfg.Addr, r.p, err)
		}
		if errors.Is(err, ErrOwned) || errors.Is(err, ErrUnavailable) {
			return 0, err
		}
		return 0, fmt.Errorf("%w: redis %s: counter %s: %v", ErrUnavailable, r.cfg.Addr, name, err)
	}
	return hi, nil
}

// reserveOnce runs the reservation script and remembers the mark.
func (r *Redis) reserveOnce(ctx context.Context, name string, floor, n uint64) (uint64, error) {
	keys := []string{r.p + "owner", r.p + "ctr:" + name, r.p + "ctrs"}
	s, err := reserveScript.Run(ctx, r.c, keys, r.token, name, floor, n).Text()
	if err != nil {
		return 0, err
	}
	hi, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, err
	}
	r.hiMu.Lock()
	r.his[name] = max(r.his[name], hi)
	r.hiMu.Unlock()
	return hi, nil
}

func (r *Redis) Put(kind, id string, value []byte) {
	if r.w != nil {
		r.w.put(kind, id, value, false)
	}
}

func (r *Redis) Delete(kind, id string) {
	if r.w != nil {
		r.w.put(kind, id, nil, true)
	}
}

func (r *Redis) Next(name string) (uint64, error) { return r.ctr.next(name) }

func (r *Redis) unavailable(err error) error {
	return fmt.Errorf("%w: redis %s: %v", ErrUnavailable, r.cfg.Addr, err)
}

func (r *Redis) Kinds() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	all, err := r.c.SMembers(ctx, r.p+"kinds").Result()
	if err != nil {
		return nil, r.unavailable(err)
	}
	var kinds []string
	for _, k := range all {
		n, err := r.c.SCard(ctx, r.p+"idx:"+k).Result()
		if err != nil {
			return nil, r.unavailable(err)
		}
		if n > 0 {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	return kinds, nil
}

type redisRecord struct {
	id    string
	value []byte
}

// scanKind reads every object of kind: SSCAN over its index, MGET of the
// objects, sorted by id, each once. Records failing their checksum are named
// in bad.
func (r *Redis) scanKind(ctx context.Context, kind string) (recs []redisRecord, bad []string, err error) {
	ids, err := r.scanIDs(ctx, kind)
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(ids)
	ids = slices.Compact(ids) // SSCAN may return an id twice
	for start := 0; start < len(ids); start += 512 {
		chunk := ids[start:min(start+512, len(ids))]
		keys := make([]string, len(chunk))
		for i, id := range chunk {
			keys[i] = r.objKey(kind, id)
		}
		vals, err := r.c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, nil, r.unavailable(err)
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // deleted since the scan
			}
			val, err := decodeRecord([]byte(s))
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s/%s: %v", kind, chunk[i], err))
				continue
			}
			recs = append(recs, redisRecord{chunk[i], val})
		}
	}
	return recs, bad, nil
}

// seedMirror loads what the prefix holds at open into the writer's mirror,
// so that a resync rewrites restored objects the caller never touched again.
func (r *Redis) seedMirror(ctx context.Context) error {
	kinds, err := r.c.SMembers(ctx, r.p+"kinds").Result()
	if err != nil {
		return r.unavailable(err)
	}
	for _, kind := range kinds {
		recs, _, err := r.scanKind(ctx, kind)
		if err != nil {
			return err
		}
		for _, rc := range recs {
			r.w.seed(kind, rc.id, rc.value)
		}
	}
	return nil
}

func (r *Redis) ForEach(kind string, fn func(id string, value []byte) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs, bad, err := r.scanKind(ctx, kind)
	if err != nil {
		return err
	}
	for _, rc := range recs {
		if err := fn(rc.id, rc.value); err != nil {
			return err
		}
	}
	return badRecords(bad)
}

func (r *Redis) Counters() (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	names, err := r.c.SMembers(ctx, r.p+"ctrs").Result()
	if err != nil {
		return nil, r.unavailable(err)
	}
	out := map[string]uint64{}
	for _, name := range names {
		s, err := r.c.Get(ctx, r.p+"ctr:"+name).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, r.unavailable(err)
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: counter %s is %q", ErrCorrupt, name, s)
		}
		out[name] = v
	}
	return out, nil
}

func (r *Redis) Flush(ctx context.Context) error {
	if r.w == nil {
		return nil
	}
	return r.w.flush(ctx)
}

func (r *Redis) Stats() Stats {
	if r.w == nil {
		return Stats{}
	}
	return r.w.snapshot()
}

// Close writes what is queued, gives up the claim and disconnects.
func (r *Redis) Close() error {
	var err error
	if r.w != nil {
		err = r.w.close()
		if errors.Is(err, ErrClosed) {
			return err
		}
		close(r.stop)
		<-r.done
		r.ctr.close() // no reservation may claim the prefix again after the release
		ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
		if rerr := releaseScript.Run(ctx, r.c, []string{r.p + "owner"}, r.token).Err(); rerr != nil && err == nil {
			err = r.unavailable(rerr)
		}
		cancel()
	}
	r.ctr.close()
	return errors.Join(err, r.c.Close())
}

// go-redis logs every failed dial on its own (a line per retry while Redis is
// down), process-wide. The store reports those failures itself, rate-limited,
// so the library's lines go to the first opener's log at debug level.
var redisLogOnce sync.Once

type redisLogger struct{ log *logrus.Entry }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debugf("go-redis: "+format, v...)
}
