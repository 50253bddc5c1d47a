package ng

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	requests        *prometheus.CounterVec // command, result
	retransmissions prometheus.Counter
	dropped         *prometheus.CounterVec // reason
}

func newMetrics(reg prometheus.Registerer, calls func() float64) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_ng_requests_total",
			Help: "ng protocol commands answered, by command and result (ok, pong, error, load limit).",
		}, []string{"command", "result"}),
		retransmissions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mediagw_ng_retransmissions_total",
			Help: "Repeated ng commands (same source and cookie) answered from the reply cache.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_ng_dropped_total",
			Help: "ng datagrams dropped unanswered, by reason (source: outside ng.allow; no_cookie).",
		}, []string{"reason"}),
	}
	if reg != nil {
		active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mediagw_ng_calls_active",
			Help: "Calls (Call-IDs) the ng front holds.",
		}, calls)
		for _, c := range []prometheus.Collector{m.requests, m.retransmissions, m.dropped, active} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// commandLabel bounds the command label to the known commands.
func commandLabel(name string) string {
	if _, ok := commandNames[name]; ok {
		return name
	}
	return "unknown"
}
