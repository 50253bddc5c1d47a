package control

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// webhook POSTs every event to http.webhook, in order: the body is the same
// JSON object as the event stream's data, the type is in the
// X-Mediagw-Event header. A failed POST (no answer, or not 2xx) is retried
// with a backoff from 100 ms to 5 s, and the events behind it wait, so the
// receiver gets them all in order once it is back. The queue is bounded:
// when it is full, new events are dropped and counted
// (mediagw_events_dropped_total{sink="webhook"}); publishing never blocks.
type webhook struct {
	url     string
	q       chan sseEvent
	dropped prometheus.Counter
	client  *http.Client
	log     *logrus.Entry
}

// webhookQueue is how many events wait for the receiver at most.
const webhookQueue = 10000

func newWebhook(url string, dropped prometheus.Counter, log *logrus.Entry) *webhook {
	return &webhook{url: url, q: make(chan sseEvent, webhookQueue), dropped: dropped,
		client: &http.Client{Timeout: 5 * time.Second}, log: log.WithField("webhook", url)}
}

func (w *webhook) offer(e sseEvent) {
	select {
	case w.q <- e:
	default:
		w.dropped.Inc()
	}
}

// run delivers until ctx ends.
func (w *webhook) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-w.q:
			backoff := 100 * time.Millisecond
			for failures := 0; ; failures++ {
				err := w.post(ctx, e)
				if err == nil {
					if failures > 0 {
						w.log.WithField("failures", failures).Info("webhook receiver answers again")
					}
					break
				}
				if failures == 0 {
					w.log.WithError(err).Warn("webhook POST failed; retrying with backoff, later events wait")
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 5*time.Second)
			}
		}
	}
}

type statusError int

func (s statusError) Error() string { return "receiver answered " + http.StatusText(int(s)) }

func (w *webhook) post(ctx context.Context, e sseEvent) error {
	req, err := http.NewRequestWithContext(ctx, "POST", w.url, bytes.NewReader(e.data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Mediagw-Event", e.typ)
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusError(resp.StatusCode)
	}
	return nil
}
