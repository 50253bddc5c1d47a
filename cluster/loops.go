package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// register writes this node's record (again, after Redis lost it) and
// learns its index.
func (c *Cluster) register(ctx context.Context) error {
	n := c.self
	load := int64(0)
	if c.info.Load != nil {
		load = c.info.Load()
	}
	c.count(1)
	idx, err := registerScript.Run(ctx, c.rdb,
		[]string{c.p + "node:" + n.Name, c.p + "nodes", c.p + "index:" + n.Name, c.p + "indexes", c.p + "byindex"},
		c.token, c.cfg.TTL.Milliseconds(), n.Advertise, n.Name, n.Index,
		"name", n.Name, "advertise", n.Advertise, "sip", n.SIP, "mgcp", n.MGCP, "ng", n.NG,
		"capacity", n.Capacity, "load", load, "started", n.Started.UnixMilli()).Int64()
	if err != nil {
		c.failed()
		if isTaken(err) {
			return fmt.Errorf("%w: %v", ErrTaken, err)
		}
		return fmt.Errorf("cluster: registering node %s at %s: %w", n.Name, c.cfg.Redis.Addr, err)
	}
	if n.Index != 0 && uint64(idx) != n.Index {
		// Redis lost the index and another node took it meanwhile: IDs
		// made from now on name the new one.
		c.log.WithField("was", n.Index).WithField("now", idx).Error("this node's index changed (Redis lost the registry); IDs made before name the old one")
	}
	c.self.Index = uint64(idx)
	return nil
}

// refresh reads every registered node's record: the alive set, the
// index map, and the nodes missing their record.
func (c *Cluster) refresh(ctx context.Context) error {
	names, err := c.rdb.SMembers(ctx, c.p+"nodes").Result()
	if err != nil {
		c.failed()
		return err
	}
	pipe := c.rdb.Pipeline()
	recs := make([]*redis.MapStringStringCmd, len(names))
	for i, name := range names {
		recs[i] = pipe.HGetAll(ctx, c.p+"node:"+name)
	}
	byIdx := pipe.HGetAll(ctx, c.p+"byindex")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		c.count(2)
		c.failed()
		return err
	}
	c.count(2)
	now := time.Now()
	alive := map[string]Node{}
	for i, name := range names {
		m := recs[i].Val()
		if len(m) == 0 {
			continue
		}
		alive[name] = nodeOf(m)
	}
	c.mu.Lock()
	c.nodes = alive
	c.nodes[c.self.Name] = c.selfLocked()
	for k, v := range byIdx.Val() {
		if i, err := strconv.ParseUint(k, 10, 64); err == nil {
			c.byIndex[i] = v
		}
	}
	for _, name := range names {
		if _, ok := alive[name]; ok || name == c.self.Name {
			delete(c.missing, name)
			continue
		}
		if _, ok := c.missing[name]; !ok {
			c.missing[name] = now
		}
	}
	for name := range c.missing {
		if !slices.Contains(names, name) {
			delete(c.missing, name) // cleaned by someone
		}
	}
	c.mu.Unlock()
	return nil
}

func (c *Cluster) selfLocked() Node {
	n := c.self
	n.Load = int64(len(c.conns))
	return n
}

func nodeOf(m map[string]string) Node {
	n := Node{Name: m["name"], Advertise: m["advertise"], SIP: m["sip"], MGCP: m["mgcp"], NG: m["ng"]}
	n.Index, _ = strconv.ParseUint(m["index"], 10, 64)
	n.Capacity, _ = strconv.ParseInt(m["capacity"], 10, 64)
	n.Load, _ = strconv.ParseInt(m["load"], 10, 64)
	if ms, err := strconv.ParseInt(m["started"], 10, 64); err == nil {
		n.Started = time.UnixMilli(ms)
	}
	return n
}

// beatLoop renews this node's record every TTL/3, watches the others, and
// cleans a node that has been dead for Grace (when it wins the lock).
func (c *Cluster) beatLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.TTL / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.TTL/3)
		err := c.beat(ctx)
		if err == nil {
			err = c.refresh(ctx)
		}
		if err == nil {
			c.reapDead(ctx)
		}
		cancel()
		switch {
		case err != nil && !failing:
			failing = true
			c.log.WithError(err).Error("cluster registry unreachable; calls go on, retrying")
		case err == nil && failing:
			failing = false
			c.log.Info("cluster registry reachable again")
		}
	}
}

// beat renews the record; a record that is gone (Redis restarted, or this
// node stalled past its TTL and was declared dead) is written again with
// everything this node holds.
func (c *Cluster) beat(ctx context.Context) error {
	load := int64(0)
	if c.info.Load != nil {
		load = c.info.Load()
	}
	c.count(1)
	r, err := beatScript.Run(ctx, c.rdb, []string{c.p + "node:" + c.self.Name}, c.token, c.cfg.TTL.Milliseconds(), load).Int()
	if err != nil {
		c.failed()
		if isTaken(err) {
			c.log.WithError(err).Error("another gateway registered under this node's name")
		}
		return err
	}
	if r == 1 {
		return nil
	}
	c.log.Warn("this node's registry record was gone (Redis restarted, or this node was declared dead): registering again")
	if err := c.register(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.resync = true
	c.mu.Unlock()
	c.kick()
	return nil
}

func (c *Cluster) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// reapDead cleans every node dead for longer than Grace, if this node
// wins its lock: its claims and connection list are removed, and a release
// of each is published for every node's event stream.
func (c *Cluster) reapDead(ctx context.Context) {
	c.mu.Lock()
	var due []string
	for name, since := range c.missing {
		if time.Since(since) >= c.cfg.Grace {
			due = append(due, name)
		}
	}
	c.mu.Unlock()
	for _, name := range due {
		if c.hooks.NodeDown != nil {
			c.hooks.NodeDown(name)
		}
		c.count(1)
		ok, err := c.rdb.SetNX(ctx, c.p+"reap:"+name, c.self.Name, 10*c.cfg.TTL).Result()
		if err != nil {
			c.failed()
			continue
		}
		if !ok {
			continue // another survivor cleans it
		}
		if err := c.reap(ctx, name); err != nil {
			c.failed()
			c.log.WithError(err).WithField("dead", name).Warn("cleaning a dead node failed; retrying")
			c.rdb.Del(ctx, c.p+"reap:"+name)
			continue
		}
		c.mu.Lock()
		delete(c.missing, name)
		c.stats.Reaped++
		c.mu.Unlock()
	}
}

func (c *Cluster) reap(ctx context.Context, name string) error {
	if exists, err := c.rdb.Exists(ctx, c.p+"node:"+name).Result(); err != nil || exists == 1 {
		return err // came back meanwhile
	}
	conns, err := c.rdb.SMembers(ctx, c.p+"conns:"+name).Result()
	if err != nil {
		return err
	}
	confs, err := c.rdb.SMembers(ctx, c.p+"confs:"+name).Result()
	if err != nil {
		return err
	}
	c.count(3)
	pipe := c.rdb.TxPipeline()
	for _, cf := range confs {
		unclaimScript.Eval(ctx, pipe, []string{c.p + "conf:" + cf, c.p + "confs:" + name}, name, cf)
	}
	pipe.Del(ctx, c.p+"conns:"+name, c.p+"confs:"+name)
	pipe.SRem(ctx, c.p+"nodes", name)
	for _, id := range conns {
		pipe.Publish(ctx, c.p+"events", releaseEvent(name, "ConnectionReleased", "ConnectionId", id))
	}
	for _, cf := range confs {
		pipe.Publish(ctx, c.p+"events", releaseEvent(name, "ConferenceReleased", "ConferenceId", cf))
	}
	c.count(1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	c.log.WithField("dead", name).WithField("connections", len(conns)).WithField("conferences", len(confs)).
		Warn("a dead node's records were cleaned and their releases announced")
	return nil
}

func releaseEvent(node, typ, key, id string) []byte {
	b, _ := json.Marshal(RemoteEvent{Node: node, Type: typ, Data: map[string]string{
		key: id, "By": "cluster", "Reason": "node-down", "ResultCode": "0"}})
	return b
}

// writeLoop writes the queued registry updates and events, one pipeline
// per batch; after a failure it rebuilds this node's records.
func (c *Cluster) writeLoop() {
	defer c.wg.Done()
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-c.stop:
				return
			case <-time.After(backoff):
			}
		} else {
			select {
			case <-c.stop:
				return
			case <-c.wake:
			}
			select { // let a batch gather
			case <-c.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.flush(ctx)
		cancel()
		if err != nil {
			backoff = min(max(2*backoff, 50*time.Millisecond), time.Second)
			continue
		}
		backoff = 0
	}
}

// flush writes what is queued.
func (c *Cluster) flush(ctx context.Context) error {
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	c.mu.Lock()
	q := c.queue
	c.queue = nil
	resync := c.resync
	c.resync = false
	var conns, held []string
	if resync {
		for id := range c.conns {
			conns = append(conns, id)
		}
		for name := range c.held {
			held = append(held, name)
		}
	}
	n := c.self.Name
	pipe := c.rdb.Pipeline()
	ops := 0
	for _, u := range q {
		switch u.kind {
		case connAdd:
			if !resync {
				pipe.SAdd(ctx, c.p+"conns:"+n, u.id)
				ops++
			}
		case connDel:
			if !resync {
				pipe.SRem(ctx, c.p+"conns:"+n, u.id)
				ops++
			}
		case confDel:
			if g, ok := c.held[u.id]; ok && g == u.gen {
				delete(c.held, u.id)
				unclaimScript.Eval(ctx, pipe, []string{c.p + "conf:" + u.id, c.p + "confs:" + n}, n, u.id)
				ops++
			}
		case event:
			pipe.Publish(ctx, c.p+"events", u.data)
			ops++
		}
	}
	c.mu.Unlock()
	if resync {
		pipe.Del(ctx, c.p+"conns:"+n)
		for i := 0; i < len(conns); i += 512 {
			args := make([]any, 0, 512)
			for _, id := range conns[i:min(i+512, len(conns))] {
				args = append(args, id)
			}
			pipe.SAdd(ctx, c.p+"conns:"+n, args...)
		}
		for _, name := range held {
			claimScript.Eval(ctx, pipe, []string{c.p + "conf:" + name, c.p + "confs:" + n}, n, name, c.p+"node:")
		}
		ops++
	}
	if ops == 0 {
		return nil
	}
	cmds, err := pipe.Exec(ctx)
	c.mu.Lock()
	c.stats.RoundTrips++
	c.stats.Pipelines++
	c.stats.Updates += uint64(len(q))
	if err != nil && !errors.Is(err, redis.Nil) {
		c.stats.Errors++
		c.resync = true // whatever part of it was lost is rewritten
		// Events are not retried: a stream reader sees a gap, not a repeat.
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	if resync {
		for _, cmd := range cmds {
			if sc, ok := cmd.(*redis.Cmd); ok {
				if o, err := sc.Text(); err == nil && o != n && o != "" && o != "1" {
					c.log.WithField("conference", sc.Args()[3]).WithField("holder", o).
						Error("a conference this node holds was claimed by another node while the registry was away")
				}
			}
		}
	}
	return nil
}

// subscribeLoop delivers the other nodes' events to Hooks.Event.
func (c *Cluster) subscribeLoop() {
	defer c.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := c.rdb.Subscribe(ctx, c.p+"events")
	defer sub.Close()
	go func() {
		<-c.stop
		cancel()
	}()
	// Wait for the subscription, so that Join returns with events flowing.
	for {
		if _, err := sub.Receive(ctx); err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-c.stop:
			close(c.subReady)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	close(c.subReady)
	ch := sub.Channel(redis.WithChannelSize(4096))
	for {
		select {
		case <-c.stop:
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			var ev RemoteEvent
			if err := json.Unmarshal([]byte(m.Payload), &ev); err != nil || ev.Node == c.self.Name || ev.Type == "" {
				continue
			}
			c.mu.Lock()
			c.stats.EventsIn++
			c.mu.Unlock()
			if c.hooks.Event != nil {
				c.hooks.Event(ev)
			}
		}
	}
}
