package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sirupsen/logrus"
)

// Stride spaces the IDs of the nodes: the nth ID node i makes is
// n*Stride+i, so IDs stay decimal strings, never collide across nodes, and
// name their owner. It bounds the cluster at Stride-1 nodes.
const Stride = 1000

// ErrTaken: another gateway is registered under this node's name.
var ErrTaken = errors.New("cluster: node name taken")

// Node is one node's registry record.
type Node struct {
	Name      string
	Index     uint64
	Advertise string // its HTTP API, e.g. "http://127.0.0.2:8080"
	SIP       string // its SIP listeners, comma-separated
	MGCP      string
	NG        string
	Capacity  int64 // RTP port pairs
	Load      int64 // connections
	Started   time.Time
}

// Self is what this node tells the others about itself.
type Self struct {
	SIP, MGCP, NG string
	Capacity      int64
	Token         string       // the HTTP API's bearer token (the nodes share it): cascades are made over it
	Load          func() int64 // read at every heartbeat; nil = 0
}

// RemoteEvent is another node's event, as its HTTP API renders it.
type RemoteEvent struct {
	Node string            `json:"node"`
	Type string            `json:"type"`
	Data map[string]string `json:"data"`
}

// Hooks are how the cluster tells the gateway what happened elsewhere.
// Each is called from the cluster's goroutines and must not block long.
type Hooks struct {
	Event    func(RemoteEvent) // another node's event
	NodeDown func(name string) // a node was declared dead (before its records are cleaned)
}

// Cluster is this node's membership.
type Cluster struct {
	cfg   Config
	rdb   *redis.Client
	log   *logrus.Entry
	self  Node
	info  Self
	token string
	hooks Hooks
	p     string // key prefix

	claimMu  sync.Mutex // serializes claims and unclaims (Redis round trips; c.mu is not held across them)
	mu       sync.Mutex
	nodes    map[string]Node      // alive nodes by name, this one included (refreshed every beat)
	byIndex  map[uint64]string    // every node index ever given -> name
	missing  map[string]time.Time // registered nodes without a record, since when
	held     map[string]uint64    // conference names this node holds -> generation
	gen      uint64
	conns    map[string]struct{} // connection IDs this node holds (the registry's copy is rebuilt from it)
	queue    []update            // registry updates and events not yet written
	resync   bool                // Redis lost or missed updates: rewrite this node's records
	stats    Stats
	wake     chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	closed   bool
	subReady chan struct{}
	httpOnce sync.Once
	http     *http.Client
}

// Stats count the cluster's Redis traffic, for metrics and the benchmark.
type Stats struct {
	Pipelines    uint64 // registry/event batches written
	Updates      uint64 // registry updates and events in them
	RoundTrips   uint64 // every Redis round trip (batches, beats, claims, lookups)
	Errors       uint64 // failed round trips
	EventsIn     uint64 // events received from other nodes
	DroppedQueue uint64 // updates dropped: queue full
	Reaped       uint64 // dead nodes this node cleaned
	Unclaimed    uint64 // conferences made while the registry was away (claimed when it is back)
}

type updateKind uint8

const (
	connAdd updateKind = iota
	connDel
	confDel
	event
)

type update struct {
	kind updateKind
	id   string
	gen  uint64
	data []byte
}

// maxQueue bounds the updates waiting for Redis (while it is away).
const maxQueue = 1 << 16

// Join registers this node and starts its heartbeat, its watch of the
// others, its writer and its event subscription. ctx bounds the
// registration only.
func Join(ctx context.Context, cfg Config, info Self, hooks Hooks, log *logrus.Entry) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("cluster: cluster.node is not set")
	}
	if log == nil {
		l := logrus.New()
		l.Out = nopWriter{}
		log = logrus.NewEntry(l)
	}
	var tok [8]byte
	_, _ = rand.Read(tok[:])
	host, _ := os.Hostname()
	c := &Cluster{
		cfg: cfg,
		rdb: redis.NewClient(&redis.Options{
			Addr: cfg.Redis.Addr, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
			DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
			MaxRetries: -1, // a failed round trip is retried by the loops, not inside them
		}),
		log:      log.WithField("component", "cluster").WithField("node", cfg.Node),
		info:     info,
		token:    fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(tok[:])),
		hooks:    hooks,
		p:        cfg.Redis.Prefix,
		nodes:    map[string]Node{},
		byIndex:  map[uint64]string{},
		missing:  map[string]time.Time{},
		held:     map[string]uint64{},
		conns:    map[string]struct{}{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		subReady: make(chan struct{}),
	}
	c.self = Node{Name: cfg.Node, Advertise: cfg.Advertise, SIP: info.SIP, MGCP: info.MGCP, NG: info.NG,
		Capacity: info.Capacity, Started: time.Now()}
	if err := c.register(ctx); err != nil {
		c.rdb.Close()
		return nil, err
	}
	if err := c.refresh(ctx); err != nil {
		c.rdb.Close()
		return nil, fmt.Errorf("cluster: reading the registry: %w", err)
	}
	c.wg.Add(3)
	go c.beatLoop()
	go c.writeLoop()
	go c.subscribeLoop()
	select {
	case <-c.subReady:
	case <-ctx.Done():
	}
	c.log.WithField("index", c.self.Index).WithField("advertise", cfg.Advertise).Info("joined the cluster")
	return c, nil
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// Self is this node's record.
func (c *Cluster) Self() Node { return c.self }

// Index is this node's index: its IDs are n*Stride+Index.
func (c *Cluster) Index() uint64 { return c.self.Index }

// Nodes lists the alive nodes (as of the last heartbeat), by name.
func (c *Cluster) Nodes() []Node {
	c.mu.Lock()
	out := make([]Node, 0, len(c.nodes))
	for _, n := range c.nodes {
		out = append(out, n)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Alive returns node name's record if it is alive.
func (c *Cluster) Alive(name string) (Node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.nodes[name]
	return n, ok
}

// IDOwner names the node that made the decimal ID id (a connection or an
// unnamed conference): ok is false when id is not a number or its index
// was never given out.
func (c *Cluster) IDOwner(id string) (name string, ok bool) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return "", false
	}
	i := n % Stride
	c.mu.Lock()
	name, ok = c.byIndex[i]
	c.mu.Unlock()
	if ok || i == 0 {
		return name, ok
	}
	// A node that joined since the last heartbeat: ask.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.count(1)
	name, err = c.rdb.HGet(ctx, c.p+"byindex", strconv.FormatUint(i, 10)).Result()
	if err != nil {
		return "", false
	}
	c.mu.Lock()
	c.byIndex[i] = name
	c.mu.Unlock()
	return name, true
}

// ConferenceOwner names the node holding conference name: its claim, or
// for an unclaimed decimal name, the node whose index it carries. "" when
// nobody does.
func (c *Cluster) ConferenceOwner(ctx context.Context, name string) (string, error) {
	c.count(1)
	o, err := c.rdb.Get(ctx, c.p+"conf:"+name).Result()
	if err == nil {
		return o, nil
	}
	if !errors.Is(err, redis.Nil) {
		c.failed()
		return "", fmt.Errorf("cluster: conference owner: %w", err)
	}
	if n, ok := c.IDOwner(name); ok {
		return n, nil
	}
	return "", nil
}

// ClaimConference claims name for this node. It returns the node holding
// it: this node's name when the claim is (now) ours. A claim of a name this
// node holds already costs no round trip.
func (c *Cluster) ClaimConference(ctx context.Context, name string) (string, error) {
	c.claimMu.Lock() // claims and unclaims in order; never held waiting for the table
	defer c.claimMu.Unlock()
	c.mu.Lock()
	c.gen++
	g := c.gen
	if _, ok := c.held[name]; ok {
		c.held[name] = g
		c.mu.Unlock()
		return c.self.Name, nil
	}
	c.stats.RoundTrips++
	c.mu.Unlock()
	o, err := claimScript.Run(ctx, c.rdb, []string{c.p + "conf:" + name, c.p + "confs:" + c.self.Name},
		c.self.Name, name, c.p+"node:").Text()
	if err != nil {
		c.failed()
		// The registry is away: the conference is made here (calls go
		// on) and claimed when the registry is back (flush's resync),
		// where a claim another node made meanwhile is reported.
		c.mu.Lock()
		c.held[name] = g
		c.resync = true
		c.stats.Unclaimed++
		c.mu.Unlock()
		c.log.WithError(err).WithField("conference", name).Warn("cluster registry away: conference made here unclaimed; claimed when the registry is back")
		return c.self.Name, nil
	}
	if o == c.self.Name {
		c.mu.Lock()
		c.held[name] = g
		c.mu.Unlock()
	}
	return o, nil
}

// ReleaseConference gives up this node's claim of name (queued: it never
// blocks). A claim of the same name after this call keeps it.
func (c *Cluster) ReleaseConference(name string) {
	c.mu.Lock()
	g, ok := c.held[name]
	if ok {
		c.enqueueLocked(update{kind: confDel, id: name, gen: g})
	}
	c.mu.Unlock()
}

// ConnectionCreated and ConnectionReleased keep the registry's list of this
// node's connections (queued).
func (c *Cluster) ConnectionCreated(id string) {
	c.mu.Lock()
	c.conns[id] = struct{}{}
	c.enqueueLocked(update{kind: connAdd, id: id})
	c.mu.Unlock()
}

func (c *Cluster) ConnectionReleased(id string) {
	c.mu.Lock()
	if _, ok := c.conns[id]; ok {
		delete(c.conns, id)
		c.enqueueLocked(update{kind: connDel, id: id})
	}
	c.mu.Unlock()
}

// Publish sends one of this node's events to the other nodes (queued).
func (c *Cluster) Publish(typ string, data []byte) {
	b := make([]byte, 0, len(data)+len(typ)+len(c.self.Name)+32)
	b = append(b, `{"node":`...)
	b = strconv.AppendQuote(b, c.self.Name)
	b = append(b, `,"type":`...)
	b = strconv.AppendQuote(b, typ)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, '}')
	c.mu.Lock()
	c.enqueueLocked(update{kind: event, data: b})
	c.mu.Unlock()
}

func (c *Cluster) enqueueLocked(u update) {
	if c.closed {
		return
	}
	if len(c.queue) >= maxQueue {
		c.stats.DroppedQueue++
		if u.kind != event {
			c.resync = true // the registry is rebuilt from c.conns and c.held
		}
		return
	}
	c.queue = append(c.queue, u)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Stats returns the counters.
func (c *Cluster) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

func (c *Cluster) count(n uint64) {
	c.mu.Lock()
	c.stats.RoundTrips += n
	c.mu.Unlock()
}

func (c *Cluster) failed() {
	c.mu.Lock()
	c.stats.Errors++
	c.mu.Unlock()
}

// Leave stops the loops, writes what is queued and removes this node from
// the registry (a graceful stop: the others see it gone at once; its
// claims go with it). keep: leave the records for this node's next start
// (a restart that keeps the calls).
func (c *Cluster) Leave(keep bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.flush(ctx)
	var err error
	if !keep {
		n := c.self.Name
		pipe := c.rdb.TxPipeline()
		for name := range c.held {
			unclaimScript.Eval(ctx, pipe, []string{c.p + "conf:" + name, c.p + "confs:" + n}, n, name)
		}
		pipe.Del(ctx, c.p+"node:"+n, c.p+"conns:"+n, c.p+"confs:"+n)
		pipe.SRem(ctx, c.p+"nodes", n)
		_, err = pipe.Exec(ctx)
	}
	c.rdb.Close()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("cluster: leaving: %w", err)
	}
	return nil
}

func isTaken(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "TAKEN") }

// Name is this node's name.
func (c *Cluster) Name() string { return c.self.Name }
