package control

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/cluster"
)

// Cluster is the registry of a cluster as the API uses it
// (*cluster.Cluster): who owns an ID, where a node answers, and the relay
// of this node's events to the others.
type Cluster interface {
	Name() string
	IDOwner(id string) (node string, ok bool)
	ConferenceOwner(ctx context.Context, name string) (string, error)
	Alive(name string) (cluster.Node, bool)
	Nodes() []cluster.Node
	Publish(typ string, data []byte)
}

// In a cluster any node's API answers for any connection or conference: an
// action naming an ID this node does not hold is sent on to the node that
// does, with the same method, path, body and token, and its answer is
// returned as it came. A forwarded request carries hdrForwarded and is
// answered where it lands (never forwarded twice); an answer from another
// node carries hdrNode. An owner that is dead or does not answer leaves the
// action to this node's table, which answers as for an unknown ID.
const (
	hdrForwarded = "X-Mediagw-Forwarded" // the node that forwarded the request
	hdrNode      = "X-Mediagw-Node"      // the node that answered
)

// SetCluster makes the API a cluster node's: forwarding, listings of
// every node, and events of every node. Call it before Serve.
func (s *Server) SetCluster(c Cluster) {
	s.cluster = c
	s.events.node = c.Name()
	s.events.relay = c.Publish
	s.fwd = &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       idleTimeout,
		ResponseHeaderTimeout: maxTimeout + 10*time.Second, // an action's own Timeout bounds it first
	}}
}

// RemoteEvent hands another node's event to this node's event streams.
func (s *Server) RemoteEvent(ev cluster.RemoteEvent) {
	s.events.publishRemote(ev.Node, ev.Type, ev.Data)
}

// remoteOwner names the alive node other than this one that holds the ID
// the action is about, or "" to run it here.
//
// A JoinConference of a conference another node holds is not forwarded:
// the member joins here, in a cascade (session/cascade.go). Any other
// action about a conference this node has only a cascade of goes to the
// holder.
func (s *Server) remoteOwner(ctx context.Context, log *logrus.Entry, action string, p params) string {
	if s.cluster == nil {
		return ""
	}
	var owner string
	if id, _ := p.optional("ConnectionId"); id != "" {
		if _, err := s.table.Connection(id); err == nil {
			return ""
		}
		owner, _ = s.cluster.IDOwner(id)
	} else if id, _ := p.optional("ConferenceId"); id != "" && action != "JoinConference" {
		if cf, err := s.table.Conference(id); err == nil {
			if cf.CascadeOf == "" {
				return ""
			}
			owner = cf.CascadeOf
		} else if o, err := s.cluster.ConferenceOwner(ctx, id); err != nil {
			log.WithError(err).Warn("cluster registry: conference owner unknown; answering here")
			return ""
		} else {
			owner = o
		}
	}
	if owner == "" || owner == s.cluster.Name() {
		return ""
	}
	if _, alive := s.cluster.Alive(owner); !alive {
		return ""
	}
	return owner
}

// forward sends r (whose body was read into body) to node and copies its
// answer to w. false: the node did not answer (nothing was written).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, node string, body []byte) bool {
	n, ok := s.cluster.Alive(node)
	if !ok {
		return false
	}
	resp, err := s.send(r.Context(), r.Method, strings.TrimRight(n.Advertise, "/")+r.URL.RequestURI(), r.Header, body)
	if err != nil {
		s.log.WithError(err).WithField("node", node).Warn("forwarding to the owning node failed; answering here")
		return false
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set(hdrNode, node)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return true
}

// send is one request to another node, as forwarded by this one.
func (s *Server) send(ctx context.Context, method, url string, in http.Header, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	for _, h := range []string{"Authorization", "Content-Type", "Accept"} {
		if v := in.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(hdrForwarded, s.cluster.Name())
	return s.fwd.Do(req)
}

// gather asks every other alive node for path's listing (field: its JSON
// array) and returns their entries; a node that does not answer within
// 2 s is left out and named in the log.
func (s *Server) gather(r *http.Request, path, field string) []json.RawMessage {
	if s.cluster == nil || r.Header.Get(hdrForwarded) != "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		out []json.RawMessage
		wg  sync.WaitGroup
	)
	for _, n := range s.cluster.Nodes() {
		if n.Name == s.cluster.Name() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.send(ctx, http.MethodGet, strings.TrimRight(n.Advertise, "/")+path, r.Header, nil)
			if err != nil {
				s.log.WithError(err).WithField("node", n.Name).Warn("listing: a node did not answer")
				return
			}
			defer resp.Body.Close()
			var m map[string][]json.RawMessage
			if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&m) != nil {
				s.log.WithField("node", n.Name).WithField("status", resp.StatusCode).Warn("listing: a node's answer is unreadable")
				return
			}
			mu.Lock()
			out = append(out, m[field]...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// nodeName is this node's name in a cluster, "" standalone.
func (s *Server) nodeName() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.Name()
}
