package session

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediagw/mediagw/rtpproxy"
)

type metrics struct {
	t             *Table
	deletes       *prometheus.CounterVec
	mediaTimeouts prometheus.Counter
	digits        *prometheus.CounterVec // source: rfc4733, info
	opsActive     *prometheus.GaugeVec   // action
	opsTotal      *prometheus.CounterVec // action, termination
	recBytes      prometheus.Counter
}

func newMetrics(t *Table) *metrics {
	return &metrics{
		t: t,
		deletes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_delete_connection_total",
			Help: "DeleteConnection operations by scope (connection, conference, member) and ResultCode.",
		}, []string{"scope", "result"}),
		mediaTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mediagw_media_timeouts_total",
			Help: "Connections released because no RTP arrived within rtp.media_timeout.",
		}),
		digits: newDigitCounter(),
		opsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mediagw_media_operations_active",
			Help: "Media operations running, by action.",
		}, []string{"action"}),
		opsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_media_operations_total",
			Help: "Media operations ended, by action and TerminationCondition (failed: ResultCode not 0).",
		}, []string{"action", "termination"}),
		recBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mediagw_recording_bytes_total",
			Help: "Audio bytes written into recordings (WAV data, headers not counted).",
		}),
	}
}

// newDigitCounter is mediagw_dtmf_digits_total with its sources exposed at 0.
func newDigitCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mediagw_dtmf_digits_total",
		Help: "DTMF digits received, by source: rfc4733 (telephone-events), info (SIP INFO), inband (tones detected on a G.711 leg without telephone-event).",
	}, []string{"source"})
	c.WithLabelValues("rfc4733")
	c.WithLabelValues("info")
	c.WithLabelValues("inband")
	return c
}

func (m *metrics) deleted(scope Scope, connID, confID string, err error) {
	if scope == "" {
		switch {
		case connID != "" && confID != "":
			scope = ScopeMember
		case confID != "":
			scope = ScopeConference
		default:
			scope = ScopeConnection
		}
	}
	m.deletes.WithLabelValues(string(scope), strconv.Itoa(ResultCode(err))).Inc()
}

// Register adds the table's metrics (DESIGN §6) to reg.
func (t *Table) Register(reg prometheus.Registerer) error {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		t.met.deletes,
		t.met.mediaTimeouts,
		t.met.digits,
		t.met.opsActive,
		t.met.opsTotal,
		t.met.recBytes,
		gauge("mediagw_connections_active", "Open connections.", func() float64 {
			n, _, _ := t.counts()
			return float64(n)
		}),
		gauge("mediagw_conferences_active", "Live conferences (mixed or hairpinned).", func() float64 {
			_, n, _ := t.counts()
			return float64(n)
		}),
		gauge("mediagw_bridges_active", "Live two-party bridges.", func() float64 {
			_, _, n := t.counts()
			return float64(n)
		}),
		gauge("mediagw_rtp_ports_free", "Free RTP and RTCP ports in rtp.port_min..port_max.", func() float64 {
			return float64(t.FreePorts())
		}),
	}
	for i, name := range poolNames {
		p := pool(i)
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "mediagw_resources_in_use",
			Help:        "Resource units in use per pool.",
			ConstLabels: prometheus.Labels{"pool": name},
		}, func() float64 {
			t.mu.Lock()
			defer t.mu.Unlock()
			return float64(t.inUse[p])
		}))
	}
	for _, dir := range []string{"in", "out"} {
		in := dir == "in"
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "mediagw_rtp_packets_total",
			Help:        "RTP packets received from (in) and sent to (out) remotes.",
			ConstLabels: prometheus.Labels{"dir": dir},
		}, func() float64 {
			i, o := t.ports.Packets()
			if in {
				return float64(i)
			}
			return float64(o)
		}))
	}
	for r := range rtpproxy.NumDropReasons {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "mediagw_rtp_dropped_total",
			Help:        "Received RTP/RTCP packets dropped: from a source the leg does not accept (source), not RTP or RTCP (malformed), SRTP authentication failed (srtp_auth) or replayed (srtp_replay).",
			ConstLabels: prometheus.Labels{"reason": r.String()},
		}, func() float64 { return float64(t.ports.Drops()[r]) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return errors.Join(errors.New("session metrics"), err)
		}
	}
	return nil
}
