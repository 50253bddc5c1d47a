// Package control is the HTTP/JSON control API: the Media Control actions
// by name (POST /v1/actions/{Action}), listings of the session table,
// health and Prometheus metrics.
package control

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/session"
	"github.com/mediagw/mediagw/web"
)

// Config is the yaml section `http`.
type Config struct {
	Listen string    `yaml:"listen"` // "127.0.0.1:8080"
	Token  string    `yaml:"token"`  // when set, required as "Authorization: Bearer <token>"
	TLS    TLSConfig `yaml:"tls"`    // both set: the listener speaks HTTPS only
	// Webhook is a URL that receives every event as a JSON POST (webhook.go); "" = none.
	Webhook string `yaml:"webhook"`
}

// TLSConfig is http.tls: PEM files of the certificate (chain) and its key.
type TLSConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// DefaultConfig is the built-in `http` section.
func DefaultConfig() Config { return Config{Listen: "127.0.0.1:8080"} }

// Validate reports the first bad value, naming its key.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("http.listen: %q: %v", c.Listen, err)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("http.tls: cert and key go together")
	}
	if c.Webhook != "" {
		if u, err := url.Parse(c.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("http.webhook: %q is not an http(s) URL", c.Webhook)
		}
	}
	if c.TLS.Cert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key); err != nil {
			return fmt.Errorf("http.tls: %v", err)
		}
	}
	return nil
}

// Limits on what a client may make the listener hold (issue 10): a slow
// or huge request is cut, an idle keep-alive connection closed.
const (
	headerTimeout  = 10 * time.Second // request line and headers
	bodyTimeout    = 10 * time.Second // a request body, from the end of its headers
	idleTimeout    = 60 * time.Second // keep-alive connections between requests
	maxHeaderBytes = 32 << 10
)

// maxTimeout bounds an action's Timeout parameter.
const maxTimeout = 10 * time.Minute

// Server serves the control API.
type Server struct {
	cfg         Config
	bodyTimeout time.Duration // bodyTimeout; tests shorten it
	table       *session.Table
	log         *logrus.Entry
	gatherer    prometheus.Gatherer
	actions     *prometheus.CounterVec
	mux         *http.ServeMux
	events      *eventHub // GET /v1/events (events.go)
	cluster     Cluster   // nil: standalone (cluster.go)
	fwd         *http.Client
}

// New builds the API over table; metrics are served from gatherer.
func New(cfg Config, table *session.Table, log *logrus.Entry, reg prometheus.Registerer, gatherer prometheus.Gatherer) (*Server, error) {
	s := &Server{
		bodyTimeout: bodyTimeout,
		cfg:         cfg,
		table:       table,
		log:         log.WithField("component", "control"),
		gatherer:    gatherer,
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_http_actions_total",
			Help: "HTTP control actions by name and ResultCode.",
		}, []string{"action", "result"}),
		mux:    http.NewServeMux(),
		events: newEventHub(),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.actions, s.events.droppedBy} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("control metrics: %w", err)
			}
		}
	}
	if cfg.Webhook != "" {
		s.events.webhook = newWebhook(cfg.Webhook, s.events.droppedBy.WithLabelValues("webhook"), s.log)
	}
	table.Subscribe(s.events.publish)
	s.mux.HandleFunc("POST /v1/actions/{action}", s.auth(s.handleAction))
	s.mux.HandleFunc("GET /v1/connections", s.auth(s.handleConnections))
	s.mux.HandleFunc("GET /v1/conferences", s.auth(s.handleConferences))
	s.mux.HandleFunc("POST /v1/drain", s.auth(s.handleDrain))
	s.mux.HandleFunc("GET /v1/events", s.auth(s.handleEvents))
	s.mux.HandleFunc("GET /healthz", s.handleHealth)
	// The console's files hold no data (every call they make carries the
	// token), so they load before the login box asks for it.
	s.mux.Handle("GET /", web.Handler())
	s.mux.Handle("GET /metrics", s.auth(promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}).ServeHTTP))
	return s, nil
}

// Handler is the API's http.Handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.bounded(s.mux) }

// bounded gives a request with a body bodyTimeout to arrive and maxBody
// bytes (the handlers answer 413 past it). It is a per-request deadline,
// not the server's ReadTimeout, so that a long GET (an event stream) is not
// cut.
func (s *Server) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.bodyTimeout))
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// Serve answers on ln until ctx ends (HTTPS when http.tls is set).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: headerTimeout, IdleTimeout: idleTimeout,
		MaxHeaderBytes: maxHeaderBytes, ErrorLog: httpErrorLog(s.log)}
	done := make(chan struct{})
	if s.events.webhook != nil {
		go s.events.webhook.run(ctx)
	}
	go func() {
		select {
		case <-ctx.Done():
			s.events.close() // event streams end, so Shutdown need not wait for them
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		case <-done:
		}
	}()
	var err error
	if s.cfg.TLS.Cert != "" {
		err = srv.ServeTLS(ln, s.cfg.TLS.Cert, s.cfg.TLS.Key)
	} else {
		err = srv.Serve(ln)
	}
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="mediagw"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
			return
		}
		next(w, r)
	}
}

// httpStatus is the HTTP status for a ResultCode.
func httpStatus(code int) int {
	switch code {
	case session.CodeSuccess:
		return http.StatusOK
	case session.CodeUnknownCommand, session.CodeConnNotRegistered, session.CodeNotInConference:
		return http.StatusNotFound
	case session.CodeConnectionExists:
		return http.StatusConflict
	case session.CodeAllSessionsInUse, session.CodeDraining, session.CodeNoResources:
		return http.StatusServiceUnavailable
	case session.CodeCommandTimeout:
		return http.StatusGatewayTimeout
	case session.CodeInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

const maxBody = 64 << 10

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("action")
	log := s.log.WithField("action", name)
	act, ok := actions[name]
	if !ok {
		s.answer(w, log, name, "Failure", nil, fmt.Errorf("unknown action %q", name), session.CodeUnknownCommand)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || len(body) > maxBody {
			s.answerStatus(w, log, name, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", maxBody))
			return
		}
		s.answer(w, log, name, "Failure", nil, fmt.Errorf("request body unreadable: %v", err), session.CodeMalformed)
		return
	}
	p := params{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &p); err != nil {
			s.answer(w, log, name, "Failure", nil, fmt.Errorf("bad JSON: %v", err), session.CodeMalformed)
			return
		}
	}
	if r.Header.Get(hdrForwarded) == "" {
		if node := s.remoteOwner(r.Context(), log, name, p); node != "" && s.forward(w, r, node, body) {
			return
		}
	}
	timeout, err := p.millis("Timeout")
	if err == nil && timeout > maxTimeout {
		err = fmt.Errorf("%w: Timeout over %s", session.ErrInvalidParam, maxTimeout)
	}
	if err != nil {
		s.answer(w, log, name, "Failure", nil, err, session.ResultCode(err))
		return
	}
	res, err, timedOut := s.run(act, p, timeout)
	switch {
	case timedOut:
		s.answer(w, log, name, "Timeout", nil, fmt.Errorf("no answer within %s", timeout), session.CodeCommandTimeout)
	case err != nil:
		s.answer(w, log, name, "Failure", nil, err, session.ResultCode(err))
	default:
		s.answer(w, log, name, "Success", res, nil, session.CodeSuccess)
	}
}

// run executes act, bounded by timeout (0 = unbounded). An action that
// completes after its timeout is undone, so nothing it made outlives the
// caller's Timeout branch. Exactly one side claims the outcome: the caller
// (answered) or, once the caller has given up, the action's goroutine.
func (s *Server) run(act action, p params, timeout time.Duration) (result, error, bool) {
	if timeout <= 0 {
		r, _, err := act(s.table, p)
		return r, err, false
	}
	type outcome struct {
		r   result
		err error
	}
	const (
		running int32 = iota
		answered
		abandoned
	)
	var state atomic.Int32
	done := make(chan outcome, 1)
	go func() {
		r, u, err := act(s.table, p)
		if state.CompareAndSwap(running, answered) {
			done <- outcome{r, err}
			return
		}
		if err == nil && u != nil { // the caller took the Timeout branch
			u()
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case o := <-done:
		return o.r, o.err, false
	case <-timer.C:
		if state.CompareAndSwap(running, abandoned) {
			return nil, nil, true
		}
		o := <-done // it finished just as the timer fired
		return o.r, o.err, false
	}
}

func (s *Server) answer(w http.ResponseWriter, log *logrus.Entry, name, branch string, res result, err error, code int) {
	out := map[string]string{}
	for k, v := range res {
		out[k] = v
	}
	out["ResultCode"] = strconv.Itoa(code)
	out["Branch"] = branch
	if err != nil {
		out["ResultText"] = err.Error()
		log.WithField("result", code).WithError(err).Info("action failed")
	}
	if _, known := actions[name]; !known {
		name = "unknown"
	}
	s.actions.WithLabelValues(name, out["ResultCode"]).Inc()
	writeJSON(w, httpStatus(code), out)
}

// answerStatus is answer with ResultCode 35 (malformed) and an explicit
// HTTP status (413 for an oversized body).
func (s *Server) answerStatus(w http.ResponseWriter, log *logrus.Entry, name string, status int, err error) {
	log.WithField("result", session.CodeMalformed).WithError(err).Info("action refused")
	if _, known := actions[name]; !known {
		name = "unknown"
	}
	s.actions.WithLabelValues(name, strconv.Itoa(session.CodeMalformed)).Inc()
	writeJSON(w, status, map[string]string{"ResultCode": strconv.Itoa(session.CodeMalformed), "Branch": "Failure", "ResultText": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if s.table.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
