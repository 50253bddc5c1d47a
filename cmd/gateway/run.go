package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/cluster"
	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/control"
	"github.com/mediagw/mediagw/mgcp"
	"github.com/mediagw/mediagw/ng"
	"github.com/mediagw/mediagw/rtpproxy"
	"github.com/mediagw/mediagw/session"
	"github.com/mediagw/mediagw/sip"
	"github.com/mediagw/mediagw/store"
)

// drainGrace bounds how long the fronts get to tell their peers (BYE,
// DLCX, RSIP) once the table has released everything.
const drainGrace = 5 * time.Second

func newLogger(cfg LogConfig, out io.Writer) *logrus.Logger {
	log := logrus.New()
	if out == nil {
		out = os.Stderr
	}
	log.SetOutput(out)
	if cfg.Format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, DisableColors: true})
	}
	level, err := logrus.ParseLevel(cfg.Level)
	if err != nil {
		level = logrus.InfoLevel
	}
	log.SetLevel(level)
	return log
}

// splitListen parses "udp://host:port" into network and address.
func splitListen(key, s string) (network, addr string, err error) {
	network, addr, ok := strings.Cut(s, "://")
	if !ok || (network != "udp" && network != "tcp" && network != "tls") {
		return "", "", fmt.Errorf("%s: %q is not udp://, tcp:// or tls://host:port", key, s)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", "", fmt.Errorf("%s: %q: %v", key, s, err)
	}
	return network, addr, nil
}

// run starts everything and blocks until ctx ends or a front fails, then
// drains: the table releases every connection (the fronts tell their peers),
// the fronts get drainGrace to finish, and everything is closed.
func run(ctx context.Context, cfg Config, logOut io.Writer) error {
	logger := newLogger(cfg.Log, logOut)
	log := logrus.NewEntry(logger)
	log.WithField("component", "main").WithField("version", versionString()).Info("mediagw starting")
	applyRuntime(cfg.Runtime, log.WithField("component", "main"))

	ports, err := rtpproxy.NewPool(cfg.RTP)
	if err != nil {
		return fmt.Errorf("rtp: %w", err)
	}
	defer ports.Close() // the pairs kept bound for reuse; the table closes the legs
	engine := confbridge.NewEngine(confbridge.Config{Ptime: cfg.Conference.Ptime})
	defer engine.Close()
	// The state (DESIGN §10): opened, and the calls it kept restored, before
	// any front listens.
	var state store.Store
	var persist session.Persister
	if cfg.State.Store != store.KindNone {
		state, err = store.Open(cfg.State, store.Options{Log: log.WithField("component", "state")})
		var aside *store.SetAsideError
		if errors.As(err, &aside) { // a corrupt file: kept aside, and the gateway starts empty
			log.WithField("component", "state").WithError(err).Error("state file corrupt: nothing restored")
			err = nil
		}
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		defer func() {
			if err := state.Close(); err != nil {
				log.WithError(err).WithField("component", "state").Warn("closing the state")
			}
		}()
		persist = state
	}
	// The cluster (DESIGN §10): joined before the table makes an ID, since
	// every ID carries this node's index.
	var (
		cl          *cluster.Cluster
		apiRef      atomic.Pointer[control.Server]
		tableRef    atomic.Pointer[session.Table]
		keepRecords bool // leaving the cluster with the calls kept for the next start
	)
	if cfg.Cluster.Enabled() {
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cl, err = cluster.Join(jctx, cfg.Cluster, cluster.Self{
			SIP: strings.Join(cfg.SIP.Listen, ","), MGCP: cfg.MGCP.Listen, NG: cfg.NG.Listen, Capacity: int64(ports.Pairs()), Token: cfg.HTTP.Token,
			Load: func() int64 {
				if t := tableRef.Load(); t != nil {
					return int64(t.InUse("rtp"))
				}
				return 0
			},
		}, cluster.Hooks{
			Event: func(ev cluster.RemoteEvent) {
				if a := apiRef.Load(); a != nil {
					a.RemoteEvent(ev)
				}
				if t := tableRef.Load(); t != nil && ev.Type == "ConnectionReleased" {
					t.PeerConnectionReleased(ev.Node, ev.Data["ConnectionId"]) // a cascade's far end
				}
			},
			NodeDown: func(name string) {
				log.WithField("component", "cluster").WithField("dead", name).Warn("a node missed its heartbeats: declared dead")
				if t := tableRef.Load(); t != nil {
					t.PeerDown(name) // the cascades to it and from it
				}
			},
		}, log)
		cancel()
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		defer func() {
			if err := cl.Leave(keepRecords); err != nil {
				log.WithError(err).WithField("component", "cluster").Warn("leaving the cluster")
			}
		}()
	}
	scfg := session.Config{
		Resources:    cfg.Resources,
		Conference:   cfg.Conference,
		MediaTimeout: cfg.RTP.MediaTimeout,
		SRTP:         cfg.RTP.SRTP,
		Media:        cfg.Media,
		State:        persist,
	}
	if cl != nil {
		scfg.Cluster, scfg.IDStride, scfg.IDIndex = cl, cluster.Stride, cl.Index()
	}
	table := session.New(scfg, ports, engine, log)
	tableRef.Store(table)
	if state != nil {
		rep, err := table.Restore(state)
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		log.WithFields(logrus.Fields{"component": "state", "store": cfg.State.Store, "connections": rep.Connections,
			"conferences": rep.Conferences, "dropped": rep.Dropped, "recordings": rep.Recordings,
			"operations_interrupted": rep.Interrupted}).Info("state restored")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := table.Register(reg); err != nil {
		return err
	}
	if state != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mediagw_state_write_errors_total",
			Help: "State updates that failed to commit or were dropped (the calls go on; a restart may lose them).",
		}, func() float64 { return float64(state.Stats().WriteErrors) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mediagw_state_unwritten",
			Help: "State updates queued or being committed: what a crash now would lose.",
		}, func() float64 { s := state.Stats(); return float64(s.Pending + s.Committing) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mediagw_mix_late_ticks_total",
		Help: "Conference mixer ticks that ran late.",
	}, func() float64 { return float64(engine.LateTicks()) }))

	// Listeners first, so a port in use fails the start before anything runs.
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	closers = append(closers, httpLn)
	_, mgcpAddr, err := splitListen("mgcp.listen", cfg.MGCP.Listen)
	if err != nil {
		closeAll()
		return err
	}
	mgcpConn, err := net.ListenPacket("udp", mgcpAddr)
	if err != nil {
		closeAll()
		return fmt.Errorf("mgcp.listen: %w", err)
	}
	closers = append(closers, mgcpConn)
	var ngConn net.PacketConn
	if cfg.NG.Listen != "" {
		ngAddr, err := ng.ListenAddr(cfg.NG.Listen)
		if err != nil {
			closeAll()
			return err
		}
		if ngConn, err = net.ListenPacket("udp", ngAddr); err != nil {
			closeAll()
			return fmt.Errorf("ng.listen: %w", err)
		}
		closers = append(closers, ngConn)
	}
	var sipUDP []net.PacketConn
	var sipTCP, sipTLS []net.Listener
	for i, l := range cfg.SIP.Listen {
		key := fmt.Sprintf("sip.listen[%d]", i)
		network, addr, err := splitListen(key, l)
		if err != nil {
			closeAll()
			return err
		}
		if network == "udp" {
			pc, err := net.ListenPacket("udp", addr)
			if err != nil {
				closeAll()
				return fmt.Errorf("%s: %w", key, err)
			}
			closers = append(closers, pc)
			sipUDP = append(sipUDP, pc)
		} else {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				closeAll()
				return fmt.Errorf("%s: %w", key, err)
			}
			closers = append(closers, ln)
			if network == "tls" {
				sipTLS = append(sipTLS, ln)
			} else {
				sipTCP = append(sipTCP, ln)
			}
		}
	}
	defer closeAll()

	api, err := control.New(cfg.HTTP, table, log, reg, reg)
	if err != nil {
		return err
	}
	if cl != nil {
		api.SetCluster(cl)
		apiRef.Store(api)
		registerClusterMetrics(reg, cl)
	}
	mgcpSrv, err := mgcp.New(cfg.MGCP, table, log, reg)
	if err != nil {
		return fmt.Errorf("mgcp: %w", err)
	}
	sipSrv, err := sip.New(cfg.SIP, cfg.Routes, cfg.Conference.Codecs, table, log, reg)
	if err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	var ngSrv *ng.Server
	if ngConn != nil {
		if ngSrv, err = ng.New(cfg.NG, table, log, reg); err != nil {
			return fmt.Errorf("ng: %w", err)
		}
	}

	if state != nil { // the fronts' own call state, around the connections the table restored
		srep, err := sipSrv.Restore(state)
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		mrep, err := mgcpSrv.Restore(state)
		if err != nil {
			return fmt.Errorf("state: %w", err)
		}
		var nrep ng.RestoreReport
		if ngSrv != nil {
			if nrep, err = ngSrv.Restore(state); err != nil {
				return fmt.Errorf("state: %w", err)
			}
		} else { // ng.listen is off now: its calls cannot go on
			for _, c := range table.Connections() {
				if c.Owner == session.FrontNG {
					_, _ = table.DeleteConnection(c.ID, "", session.Release{By: session.FrontSystem, Reason: "ng.listen is off"})
					nrep.Released++
				}
			}
		}
		log.WithFields(logrus.Fields{"component": "state", "sip_dialogs": srep.Dialogs, "mgcp_connections": mrep.Connections,
			"mgcp_requests": mrep.Requests, "dropped": srep.Dropped + mrep.Dropped, "released": srep.Released + mrep.Released + nrep.Released,
			"lost": srep.Lost + mrep.Lost + nrep.Lost, "ng_calls": nrep.Calls}).Info("calls restored")
		table.AnnounceRestored() // the operations the restart cut: every front and the HTTP events hear them
	}
	// Fronts serve on their own context, cancelled only after the drain.
	frontCtx, stopFronts := context.WithCancel(context.Background())
	defer stopFronts()
	reloadOnHangup(frontCtx, log.WithField("component", "main"), sipSrv.ReloadUsers, sipSrv.ReloadTLS)
	errc := make(chan error, 5+len(sipUDP)+len(sipTCP)+len(sipTLS))
	var wg sync.WaitGroup
	serve := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && !errors.Is(err, net.ErrClosed) && frontCtx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	serve("http", func() error { return api.Serve(frontCtx, httpLn) })
	serve("mgcp", func() error { return mgcpSrv.Serve(frontCtx, mgcpConn) })
	ngListen := "off"
	if ngSrv != nil {
		serve("ng", func() error { return ngSrv.Serve(frontCtx, ngConn) })
		ngListen = ngConn.LocalAddr().String()
	}
	for _, pc := range sipUDP {
		serve("sip udp", func() error { return sipSrv.ServeUDP(frontCtx, pc) })
	}
	for _, ln := range sipTCP {
		serve("sip tcp", func() error { return sipSrv.ServeTCP(frontCtx, ln) })
	}
	for _, ln := range sipTLS {
		serve("sip tls", func() error { return sipSrv.ServeTLS(frontCtx, ln) })
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); table.Run(sweepCtx) }()
	wg.Add(1)
	go func() { defer wg.Done(); returnIdleMemory(sweepCtx, cfg.Runtime.ReturnIdle) }()

	log.WithFields(logrus.Fields{
		"component": "main", "http": httpLn.Addr().String(), "mgcp": mgcpConn.LocalAddr().String(),
		"sip": cfg.SIP.Listen, "ng": ngListen, "rtp_ports": fmt.Sprintf("%d-%d", cfg.RTP.PortMin, cfg.RTP.PortMax),
	}).Info("mediagw ready")

	var runErr error
	select {
	case <-ctx.Done():
		if state != nil && !errors.Is(context.Cause(ctx), errReleaseCalls) {
			// A restart that keeps the calls: nothing is released, no BYE,
			// DLCX or RSIP is sent; the state is written out and the next
			// start on it restores every call, as after a crash.
			log.WithFields(logrus.Fields{"component": "main", "connections": len(table.Connections())}).
				Info("signal received: stopping with the calls kept in the state (SIGUSR1 releases them instead)")
			stopSweep()
			stopFronts()
			closeAll()
			wg.Wait()
			flushCtx, cancel := context.WithTimeout(context.Background(), drainGrace)
			if err := state.Flush(flushCtx); err != nil {
				log.WithError(err).WithField("component", "state").Error("the state was not written out in time: the last changes may be lost")
			}
			cancel()
			keepRecords = true
			log.WithField("component", "main").Info("mediagw stopped")
			return nil
		}
		log.WithField("component", "main").Info("signal received: draining")
	case runErr = <-errc:
		log.WithField("component", "main").WithError(runErr).Error("front failed: draining")
	}
	stopSweep()
	table.Shutdown()
	graceCtx, cancel := context.WithTimeout(context.Background(), drainGrace)
	var sd sync.WaitGroup
	sd.Add(2)
	go func() { defer sd.Done(); sipSrv.Shutdown(graceCtx) }()
	go func() { defer sd.Done(); mgcpSrv.Shutdown(graceCtx) }()
	sd.Wait()
	cancel()
	stopFronts()
	closeAll()
	wg.Wait()
	log.WithField("component", "main").Info("mediagw stopped")
	return runErr
}
