package mgcp

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	commands        *prometheus.CounterVec // verb, code
	dropped         *prometheus.CounterVec // reason
	sent            *prometheus.CounterVec // verb of gateway-initiated commands
	retransmissions prometheus.Counter
	notify          *prometheus.CounterVec // result: ok, timeout, error
	cacheEvicted    prometheus.CounterFunc
	cacheBytes      prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, cache *txCache) (*metrics, error) {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_mgcp_commands_total",
			Help: "MGCP commands answered, by verb and return code.",
		}, []string{"verb", "code"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_mgcp_dropped_total",
			Help: "MGCP datagrams, messages or digit events dropped, by reason (call_agent, malformed_response, unexpected_response, digit_queue_full).",
		}, []string{"reason"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_mgcp_gateway_commands_total",
			Help: "Gateway-initiated MGCP commands (RSIP, DLCX, NTFY) sent, by verb (first sends, not retransmissions).",
		}, []string{"verb"}),
		retransmissions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mediagw_mgcp_retransmissions_total",
			Help: "Repeated MGCP commands answered from the response cache.",
		}),
		notify: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_mgcp_notify_total",
			Help: "NTFY transactions ended, by result: ok (2xx answer), timeout (no answer after the RFC 3435 retransmissions), error (an error answer, no notified entity, or dropped behind an unanswered one).",
		}, []string{"result"}),
	}
	m.cacheEvicted = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mediagw_mgcp_response_cache_evicted_total",
		Help: "MGCP transactions forgotten before their 30 s because the response cache was at mgcp.response_cache's bound.",
	}, func() float64 { _, ev := cache.usage(); return float64(ev) })
	m.cacheBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mediagw_mgcp_response_cache_bytes",
		Help: "Bytes the MGCP response cache accounts for (responses plus per-entry overhead).",
	}, func() float64 { b, _ := cache.usage(); return float64(b) })
	for _, result := range []string{"ok", "timeout", "error"} {
		m.notify.WithLabelValues(result) // exposed at 0 from the start, for rate() and alerts
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.commands, m.dropped, m.sent, m.retransmissions, m.notify, m.cacheEvicted, m.cacheBytes} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func codeLabel(code int) string {
	s := strconv.Itoa(code)
	for len(s) < 3 {
		s = "0" + s
	}
	return s
}
