package control

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mediagw/mediagw/session"
)

// BenchmarkSSEFanout50 publishes b.N events to 50 clients reading the event
// stream over real HTTP on loopback and reports the events per second the
// fan-out sustains (each delivered to all 50), and how many clients fell
// behind and were dropped (must be 0 for the figure to count).
func BenchmarkSSEFanout50(b *testing.B) {
	const clients = 50
	s, _, _ := newServer(b, "")
	ln := listen(b)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { _ = s.Serve(ctx, ln); close(served) }()
	defer func() { cancel(); <-served }()
	addr := ln.Addr().String()
	var ready, done sync.WaitGroup
	ready.Add(clients)
	done.Add(clients)
	want := b.N
	for i := 0; i < clients; i++ {
		go func() {
			defer done.Done()
			resp, err := http.Get("http://" + addr + "/v1/events")
			if err != nil {
				ready.Done()
				return
			}
			defer resp.Body.Close()
			r := bufio.NewReaderSize(resp.Body, 64<<10)
			ready.Done()
			n := 0
			for n < want {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				if bytes.HasPrefix(line, []byte("event: ")) {
					n++
				}
			}
		}()
	}
	ready.Wait()
	for s.events.count() < clients {
		time.Sleep(time.Millisecond)
	}
	ev := session.Event{Type: session.StartTalking, ConferenceID: "bench"}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ev.Connection.ID = strconv.Itoa(i%1000 + 1)
		s.events.publish(ev)
		if i%512 == 511 {
			for s.events.backlog() > sseQueue/2 { // pace the publisher to the slowest client, as media would not
				time.Sleep(50 * time.Microsecond)
			}
		}
	}
	done.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(counterValue(b, s.events.dropped), "dropped")
}

func listen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}
