package sip

import (
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/ratelog"
)

// Refusal reasons, the label values of mediagw_sip_refused_total. Every
// request the edge turns away is counted under one of them.
const (
	RefusedUntrusted   = "untrusted"    // source not in sip.trusted and no credentials accepted
	RefusedAuth        = "auth"         // wrong, stale or replayed credentials
	RefusedRouteACL    = "route_acl"    // the route's allow list excludes the source
	RefusedRate        = "rate"         // over sip.rate for the source (503)
	RefusedRateSilent  = "rate_silent"  // so far over sip.rate that it is not answered at all
	RefusedMaxCalls    = "max_calls"    // sip.max_calls reached
	RefusedUnconfirmed = "unconfirmed"  // too many answered INVITEs not yet ACKed
	RefusedOverload    = "overload"     // behind (sip.overload): a new INVITE answered 503 at the socket
	RefusedSize        = "size"         // message or header count over the bounds
	RefusedTCPLimit    = "tcp_limit"    // TCP/TLS connection caps
	RefusedVersion     = "version"      // not SIP/2.0 (505)
	RefusedHops        = "max_forwards" // Max-Forwards exhausted (483)
	RefusedMalformed   = "malformed"    // a TCP stream that is not SIP (closed after a linger)
)

// refusalReasons lists every reason, so each series exists (at 0) from the start.
var refusalReasons = []string{RefusedUntrusted, RefusedAuth, RefusedRouteACL, RefusedRate, RefusedRateSilent, RefusedMaxCalls,
	RefusedUnconfirmed, RefusedOverload, RefusedSize, RefusedTCPLimit, RefusedVersion, RefusedHops, RefusedMalformed}

// refusalLogInterval is how often one source may add a refusal line to the log.
const refusalLogInterval = 10 * time.Second

// refusalLogKeys bounds the sources the refusal log limiter remembers.
const refusalLogKeys = 4096

func newRefusalMetric() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mediagw_sip_refused_total",
		Help: "SIP requests refused at the edge, by reason.",
	}, []string{"reason"})
}

func newRefusalLog() *ratelog.Limiter { return ratelog.New(refusalLogInterval, refusalLogKeys) }

// reject counts a refused request under reason and logs it at info level,
// at most once per source per refusalLogInterval (the line carries how many
// were held back). src is the request's source host (or host:port); entry
// builds the log entry and runs only for a line that is logged.
func (s *Server) reject(reason, src string, entry func() *logrus.Entry, msg string) {
	s.met.refused.WithLabelValues(reason).Inc()
	if !s.log.Logger.IsLevelEnabled(logrus.InfoLevel) {
		return
	}
	if host, _, err := net.SplitHostPort(src); err == nil {
		src = host
	}
	ok, held := s.refusalLog.Allow(src)
	if !ok {
		return
	}
	e := entry().WithFields(logrus.Fields{"remote": ratelog.Truncate(src, 64), "reason": reason})
	if held > 0 {
		e = e.WithField("suppressed", held)
	}
	e.Info(msg)
}
