package control

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediagw/mediagw/session"
)

// The event stream (DESIGN §8): GET /v1/events is Server-Sent Events, one
// `event: <Type>` and one `data: <JSON>` per session event, for as many
// clients as connect. The table calls the hub on its releasing (or mixing)
// goroutine, so the hub never blocks: each event is encoded once and offered
// to every client's bounded queue; a client whose queue is full is dropped
// (its stream ends, counted in mediagw_events_dropped_total{sink="sse"}).

// sseQueue is how many events a client may have pending.
const sseQueue = 1024

// ssePing keeps idle streams (and the proxies between) open.
const ssePing = 15 * time.Second

type sseEvent struct {
	typ        string
	data       []byte
	conn, conf string // for the query filters
}

type sseClient struct {
	ch         chan sseEvent
	conn, conf string // filters; "" = all
	gone       chan struct{}
}

type eventHub struct {
	droppedBy *prometheus.CounterVec        // sink: sse, webhook
	dropped   prometheus.Counter            // sink="sse"
	webhook   *webhook                      // nil without http.webhook
	node      string                        // this node's name in a cluster: every event says it ("Node")
	relay     func(typ string, data []byte) // in a cluster: hands this node's events to the others

	mu        sync.Mutex // guards clients and closed
	clients   map[*sseClient]struct{}
	listening atomic.Int32 // len(clients), for publish to skip the work when nobody listens
	closed    bool
}

func newEventHub() *eventHub {
	h := &eventHub{
		clients: map[*sseClient]struct{}{},
		droppedBy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_events_dropped_total",
			Help: "Events lost to a sink that could not keep up: sse counts event-stream clients dropped, webhook events dropped from its full queue.",
		}, []string{"sink"}),
	}
	h.dropped = h.droppedBy.WithLabelValues("sse")
	h.droppedBy.WithLabelValues("webhook")
	return h
}

// eventView is an event's JSON object: the names of DESIGN §8.
func eventView(ev session.Event) (typ string, v map[string]string) {
	v = map[string]string{}
	c := ev.Connection
	if c.ID != "" {
		v["ConnectionId"] = c.ID
	}
	if ev.ConferenceID != "" {
		v["ConferenceId"] = ev.ConferenceID
	} else if c.ConferenceID != "" {
		v["ConferenceId"] = c.ConferenceID
	}
	switch ev.Type {
	case session.ConnectionReleased:
		typ = "ConnectionReleased"
		v["Owner"] = string(c.Owner)
		v["PacketsSent"] = strconv.FormatUint(c.Stats.PacketsSent, 10)
		v["PacketsReceived"] = strconv.FormatUint(c.Stats.PacketsReceived, 10)
		v["PacketsLost"] = strconv.FormatInt(c.Stats.PacketsLost, 10)
	case session.ConferenceReleased:
		typ = "ConferenceReleased"
	case session.DigitReceived:
		typ = "DigitReceived"
		v["Digit"] = digitName(ev.Digit)
	case session.StartTalking:
		typ = "StartTalking"
	case session.StopTalking:
		typ = "StopTalking"
	case session.OperationComplete:
		op := ev.Op
		if op == nil {
			return "", nil
		}
		typ = op.Action + "_Complete"
		if op.ResultCode != 0 {
			typ = op.Action + "_Failed"
		}
		v["OperationId"] = op.OperationID
		v["ConnectionId"] = op.ConnectionID
		if op.ConferenceID != "" {
			v["ConferenceId"] = op.ConferenceID
		}
		v["ResultCode"] = strconv.Itoa(op.ResultCode)
		v["TerminationCondition"] = op.TerminationCondition
		v["ElapsedTime"] = strconv.FormatInt(op.Elapsed.Milliseconds(), 10)
		v["State"] = op.State
		if op.Action == "GatherDigits" {
			v["Digits"] = op.Digits
		}
		if op.Filename != "" {
			v["Filename"] = op.Filename
		}
	default:
		return "", nil
	}
	if ev.Type == session.ConnectionReleased || ev.Type == session.ConferenceReleased {
		if ev.By != "" {
			v["By"] = string(ev.By)
		}
		if ev.Reason != "" {
			v["Reason"] = ev.Reason
		}
		v["ResultCode"] = strconv.Itoa(ev.Code)
	}
	return typ, v
}

// digitName is an RFC 4733 event code as its key: 0-9, *, #, A-D.
func digitName(d byte) string {
	switch {
	case d <= 9:
		return string(rune('0' + d))
	case d == 10:
		return "*"
	case d == 11:
		return "#"
	case d <= 15:
		return string(rune('A' + d - 12))
	}
	return strconv.Itoa(int(d))
}

// publish hands a table event to every client. It never blocks.
func (h *eventHub) publish(ev session.Event) {
	if ev.Type == session.DigitReceived && ev.DigitEnd {
		return // a digit is reported once, at its start
	}
	if h.webhook == nil && h.relay == nil && h.listening.Load() == 0 {
		return // nobody to tell: no view built, no JSON (7.7 % of an MGCP CRCX+DLCX load)
	}
	typ, v := eventView(ev)
	if typ == "" {
		return
	}
	if h.node != "" {
		v["Node"] = h.node
	}
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	if h.relay != nil {
		h.relay(typ, data)
	}
	h.deliver(sseEvent{typ: typ, data: data, conn: v["ConnectionId"], conf: v["ConferenceId"]})
}

// publishRemote hands another node's event (its "Node" says which) to
// every client of this one.
func (h *eventHub) publishRemote(node, typ string, v map[string]string) {
	if v == nil {
		v = map[string]string{}
	}
	v["Node"] = node
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	h.deliver(sseEvent{typ: typ, data: data, conn: v["ConnectionId"], conf: v["ConferenceId"]})
}

// deliver queues e to the webhook and every client it passes the filters of.
func (h *eventHub) deliver(e sseEvent) {
	if h.webhook != nil {
		h.webhook.offer(e)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		if c.conn != "" && c.conn != e.conn || c.conf != "" && c.conf != e.conf {
			continue
		}
		select {
		case c.ch <- e:
		default: // too slow: dropped rather than let it hold anything up
			delete(h.clients, c)
			h.listening.Store(int32(len(h.clients)))
			close(c.gone)
			h.dropped.Inc()
		}
	}
}

func (h *eventHub) subscribe(conn, conf string) *sseClient {
	c := &sseClient{ch: make(chan sseEvent, sseQueue), conn: conn, conf: conf, gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(c.gone)
		return c
	}
	h.clients[c] = struct{}{}
	h.listening.Store(int32(len(h.clients)))
	return c
}

func (h *eventHub) unsubscribe(c *sseClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		h.listening.Store(int32(len(h.clients)))
		close(c.gone)
	}
}

// count is how many streams are open (tests, benchmarks).
func (h *eventHub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// backlog is the longest queue of any stream (benchmarks).
func (h *eventHub) backlog() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.clients {
		n = max(n, len(c.ch))
	}
	return n
}

// close ends every stream (the server is shutting down).
func (h *eventHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for c := range h.clients {
		delete(h.clients, c)
		h.listening.Store(int32(len(h.clients)))
		close(c.gone)
	}
}

// handleEvents streams events until the client goes, is dropped, or the
// server shuts down.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	q := r.URL.Query()
	c := s.events.subscribe(q.Get("ConnectionId"), q.Get("ConferenceId"))
	defer s.events.unsubscribe(c)
	if _, err := fmt.Fprint(w, ": mediagw events\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	ping := time.NewTicker(ssePing)
	defer ping.Stop()
	// A client that stops reading is cut after 10 s of a blocked write.
	arm := func() { _ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second)) }
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			// Dropped or shutting down: send what is queued, then end.
			arm()
			for {
				select {
				case e := <-c.ch:
					if writeEvent(w, e) != nil {
						return
					}
				default:
					_ = rc.Flush()
					return
				}
			}
		case <-ping.C:
			arm()
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return
			}
		case e := <-c.ch:
			arm()
			if writeEvent(w, e) != nil {
				return
			}
			for more := true; more; { // what else is queued, in one flush
				select {
				case e := <-c.ch:
					if writeEvent(w, e) != nil {
						return
					}
				default:
					more = false
				}
			}
		}
		if rc.Flush() != nil {
			return
		}
	}
}

func writeEvent(w http.ResponseWriter, e sseEvent) error {
	_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.typ, e.data)
	return err
}
