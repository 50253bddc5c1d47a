package sip

import (
	"strconv"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the SIP front's Prometheus series (DESIGN §6).
type metrics struct {
	requests  *prometheus.CounterVec // by method
	responses *prometheus.CounterVec // by status code
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_sip_requests_total",
			Help: "SIP requests received, by method.",
		}, []string{"method"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_sip_responses_total",
			Help: "SIP responses sent, by status code.",
		}, []string{"code"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.responses} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// knownMethods bounds the method label; anything else counts as OTHER.
var knownMethods = map[gosip.RequestMethod]bool{
	gosip.INVITE: true, gosip.ACK: true, gosip.BYE: true, gosip.CANCEL: true, gosip.OPTIONS: true,
	gosip.REFER: true, gosip.NOTIFY: true, gosip.INFO: true, gosip.UPDATE: true, gosip.REGISTER: true,
	gosip.SUBSCRIBE: true, gosip.MESSAGE: true, gosip.PRACK: true, gosip.PUBLISH: true,
}

func (m *metrics) request(method gosip.RequestMethod) {
	if !knownMethods[method] {
		method = "OTHER"
	}
	m.requests.WithLabelValues(string(method)).Inc()
}

func (m *metrics) response(code int) {
	m.responses.WithLabelValues(strconv.Itoa(code)).Inc()
}
