package sip

import (
	"strconv"
	"sync/atomic"

	gosip "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the SIP front's Prometheus series (DESIGN §6).
type metrics struct {
	requests  *prometheus.CounterVec // by method
	responses *prometheus.CounterVec // by status code
	refused   *prometheus.CounterVec // by reason (refusal.go)

	// The series in use, looked up once each: the label lookup hashes
	// and allocates, and it ran three times per call.
	byMethod [otherMethod + 1]atomic.Pointer[counter] // index methodIndex, or otherMethod
	byCode   [600]atomic.Pointer[counter]             // index code-100
}

type counter struct{ prometheus.Counter }

// methodIndex bounds the method label; anything else counts as OTHER.
var methodIndex = map[gosip.RequestMethod]int{
	gosip.INVITE: 0, gosip.ACK: 1, gosip.BYE: 2, gosip.CANCEL: 3, gosip.OPTIONS: 4,
	gosip.REFER: 5, gosip.NOTIFY: 6, gosip.INFO: 7, gosip.UPDATE: 8, gosip.REGISTER: 9,
	gosip.SUBSCRIBE: 10, gosip.MESSAGE: 11, gosip.PRACK: 12, gosip.PUBLISH: 13,
}

const otherMethod = 14 // len(methodIndex)

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
		refused: newRefusalMetric(),
	}
	for _, r := range refusalReasons {
		m.refused.WithLabelValues(r) // every reason exposed from the start, at 0
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.responses, m.refused} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) request(method gosip.RequestMethod) {
	i, ok := methodIndex[method]
	if !ok {
		i, method = otherMethod, "OTHER"
	}
	c := m.byMethod[i].Load()
	if c == nil {
		c = &counter{m.requests.WithLabelValues(string(method))}
		m.byMethod[i].Store(c)
	}
	c.Inc()
}

func (m *metrics) response(code int) {
	if code < 100 || code > 699 {
		m.responses.WithLabelValues(strconv.Itoa(code)).Inc()
		return
	}
	c := m.byCode[code-100].Load()
	if c == nil {
		c = &counter{m.responses.WithLabelValues(strconv.Itoa(code))}
		m.byCode[code-100].Store(c)
	}
	c.Inc()
}
