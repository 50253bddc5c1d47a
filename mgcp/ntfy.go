package mgcp

import (
	"net/netip"
	"time"

	"github.com/sirupsen/logrus"
)

// NTFY transactions (RFC 3435 §4.3, §4.4): one outstanding per endpoint,
// retransmitted with backoff until the call agent answers or T-MAX passes;
// mediagw_mgcp_notify_total{result} counts how each one ended.

// ntfyTx is a NTFY waiting for its response.
type ntfyTx struct {
	key   string // endpoint local name
	tid   uint32
	data  []byte
	dst   netip.AddrPort
	sent  time.Time
	n     int // retransmissions so far
	timer *time.Timer
}

// ntfyBackoff is RFC 3435 §4.3's retransmission: the first wait 200 ms,
// doubled each time up to 4 s, given up after Max2 = 7 retransmissions or
// when T-MAX (20 s) has passed since the first send.
type ntfyBackoff struct {
	initial, max, tmax time.Duration
	retries            int
}

var defaultNtfyBackoff = ntfyBackoff{initial: 200 * time.Millisecond, max: 4 * time.Second, tmax: 20 * time.Second, retries: 7}

func (b ntfyBackoff) wait(n int) time.Duration {
	d := b.initial
	for i := 0; i < n && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// startNtfy sends cmd as the endpoint's outstanding NTFY. Caller holds mu.
func (s *Server) startNtfy(key string, st *endpointState, cmd *Command) []outDatagram {
	dst := s.notifyDst(st)
	if s.notifyClosed {
		return nil
	}
	if !dst.IsValid() {
		s.met.notify.WithLabelValues("error").Inc()
		return nil
	}
	cmd.TransID = s.nextTID.Add(1)
	tx := &ntfyTx{key: key, tid: cmd.TransID, data: cmd.Marshal(), dst: dst, sent: time.Now()}
	st.inflight = tx
	s.ntfyOut[tx.tid] = tx
	s.scheduleNtfy(tx)
	s.met.sent.WithLabelValues("NTFY").Inc()
	if s.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		s.log.WithFields(logrus.Fields{"endpoint": key, "trans_id": tx.tid, "remote": dst.String(),
			"observed": cmd.Params.Value("O")}).Debug("NTFY sent")
	}
	return []outDatagram{{tx.data, dst}}
}

func (s *Server) scheduleNtfy(tx *ntfyTx) {
	tx.timer = time.AfterFunc(s.ntfyBackoff.wait(tx.n), func() {
		s.mu.Lock()
		if s.ntfyOut[tx.tid] != tx {
			s.mu.Unlock()
			return
		}
		if tx.n >= s.ntfyBackoff.retries || time.Since(tx.sent) >= s.ntfyBackoff.tmax {
			delete(s.ntfyOut, tx.tid)
			s.met.notify.WithLabelValues("timeout").Inc()
			if s.limit.allow() {
				s.log.WithFields(logrus.Fields{"endpoint": tx.key, "trans_id": tx.tid, "remote": tx.dst.String(),
					"retransmissions": tx.n}).Warn("NTFY not answered: given up")
			}
			next := s.nextNtfy(tx)
			s.mu.Unlock()
			s.sendAll(next)
			return
		}
		if s.notifyClosed {
			s.mu.Unlock()
			return
		}
		tx.n++
		s.scheduleNtfy(tx)
		s.mu.Unlock()
		s.write(tx.data, tx.dst)
	})
}

// nextNtfy ends tx on its endpoint and starts the next queued NTFY.
// Caller holds mu.
func (s *Server) nextNtfy(tx *ntfyTx) []outDatagram {
	st := s.endpoints[tx.key]
	if st == nil || st.inflight != tx {
		return nil
	}
	st.inflight = nil
	if len(st.queue) == 0 {
		return nil
	}
	cmd := st.queue[0]
	st.queue = st.queue[1:]
	return s.startNtfy(tx.key, st, cmd)
}

// completeNotify takes the call agent's response to a NTFY.
func (s *Server) completeNotify(r *Response) bool {
	s.mu.Lock()
	tx := s.ntfyOut[r.TransID]
	if tx == nil {
		s.mu.Unlock()
		return false
	}
	delete(s.ntfyOut, r.TransID)
	tx.timer.Stop()
	result := "ok"
	if r.Code >= 300 {
		result = "error"
		if s.limit.allow() {
			s.log.WithFields(logrus.Fields{"endpoint": tx.key, "trans_id": tx.tid, "code": r.Code}).Warn("NTFY refused by the call agent")
		}
	}
	s.met.notify.WithLabelValues(result).Inc()
	next := s.nextNtfy(tx)
	s.mu.Unlock()
	s.sendAll(next)
	return true
}

// stopNotify cancels every NTFY retransmission and digit timer (the
// socket is going away).
func (s *Server) stopNotify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifyClosed = true
	for tid, tx := range s.ntfyOut {
		tx.timer.Stop()
		delete(s.ntfyOut, tid)
	}
	for _, st := range s.endpoints {
		s.stopTimer(st)
	}
}
