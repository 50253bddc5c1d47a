package control

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mediagw/mediagw/session"
)

// sseReader reads "event:" / "data:" blocks from a stream.
type sseReader struct {
	t *testing.T
	r *bufio.Reader
}

func (s *sseReader) next() (string, map[string]string) {
	s.t.Helper()
	var typ string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var v map[string]string
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &v); err != nil {
				s.t.Fatalf("data %q: %v", line, err)
			}
			return typ, v
		}
	}
}

func openEvents(t *testing.T, addr, query, token string) (*sseReader, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/events"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /v1/events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseReader{t: t, r: bufio.NewReader(resp.Body)}, func() { cancel(); resp.Body.Close() }
}

// A release made over the API reaches every stream that wants it, with the
// names of DESIGN §8; a filter on another connection sees nothing of it.
func TestEventStream(t *testing.T) {
	s, _, _ := newServer(t, "tok")
	addr := serve(t, s)
	all, closeAll := openEvents(t, addr, "", "tok")
	defer closeAll()
	other, closeOther := openEvents(t, addr, "?ConnectionId=999999", "tok")
	defer closeOther()
	if resp, err := http.Get("http://" + addr + "/v1/events"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("events without the token: %d", resp.StatusCode)
		}
	}
	_, res := doTok(t, s, "tok", "CreateConnection", `{"MediaTxIP":"127.0.0.1","MediaTxPort":"40000"}`)
	id := res["ConnectionId"]
	if code, res := doTok(t, s, "tok", "DeleteConnection", `{"ConnectionId":"`+id+`"}`); code != 200 {
		t.Fatalf("DeleteConnection: %v", res)
	}
	typ, v := all.next()
	if typ != "ConnectionReleased" || v["ConnectionId"] != id || v["By"] != "http" || v["Owner"] != "http" {
		t.Fatalf("event %s %v", typ, v)
	}
	// The filtered stream got nothing of it: the next thing it sees is its own.
	s.events.publish(session.Event{Type: session.ConnectionReleased, Connection: session.Connection{ID: "999999"}})
	if typ, v := other.next(); v["ConnectionId"] != "999999" {
		t.Fatalf("filtered stream saw %s %v", typ, v)
	}
}

// A client that does not read is dropped, counted, and holds nothing up.
func TestEventStreamSlowClientDropped(t *testing.T) {
	h := newEventHub()
	slow := h.subscribe("", "")
	start := time.Now()
	for i := 0; i < sseQueue+10; i++ {
		h.publish(session.Event{Type: session.StartTalking, Connection: session.Connection{ID: "1"}, ConferenceID: "c"})
	}
	if time.Since(start) > time.Second {
		t.Fatal("publishing to a stuck client blocked")
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("the stuck client was not dropped")
	}
	if v := counterValue(t, h.dropped); v != 1 {
		t.Fatalf("dropped %v", v)
	}
	if digitName(10) != "*" || digitName(11) != "#" || digitName(12) != "A" || digitName(5) != "5" {
		t.Fatal("digit names")
	}
}

// doTok is do with a bearer token.
func doTok(t *testing.T, s *Server, token, action, body string) (int, map[string]string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "/v1/actions/"+action, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	var out map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: %v: %s", action, err, rec.Body.String())
	}
	return rec.Code, out
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// http.webhook: the receiver, down (503) for its first 3 s, then gets every
// event the event stream carried, the same objects in the same order.
func TestWebhookAfterReceiverDown(t *testing.T) {
	type got struct{ typ, body string }
	rcv := make(chan got, 100)
	up := time.Now().Add(3 * time.Second)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Now().Before(up) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		rcv <- got{r.Header.Get("X-Mediagw-Event"), string(b)}
	}))
	defer recv.Close()
	s, _, _ := newServer(t, "")
	s.cfg.Webhook = recv.URL
	s.events.webhook = newWebhook(recv.URL, s.events.droppedBy.WithLabelValues("webhook"), s.log)
	addr := serve(t, s)
	stream, closeStream := openEvents(t, addr, "", "")
	defer closeStream()
	var want []got
	for i := 0; i < 20; i++ {
		ev := session.Event{Type: session.StartTalking, Connection: session.Connection{ID: strconv.Itoa(100 + i)}, ConferenceID: "w"}
		if i%2 == 1 {
			ev.Type = session.StopTalking
		}
		s.events.publish(ev)
		typ, v := stream.next()
		b, _ := json.Marshal(v)
		want = append(want, got{typ, string(b)})
	}
	for i, w := range want {
		select {
		case g := <-rcv:
			if g != w {
				t.Fatalf("webhook event %d: %+v, the stream had %+v", i, g, w)
			}
			if i == 0 && time.Now().Before(up) {
				t.Fatal("delivered while the receiver was down")
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("webhook delivered %d of %d events", i, len(want))
		}
	}
}

// GatherDigits over HTTP: the result is an OperationId; the digits (here
// from SIP INFO through the table) come as GatherDigits_Complete on the
// event stream; StopMediaOperation ends one with userstop.
func TestGatherDigitsAction(t *testing.T) {
	s, table, _ := newServer(t, "")
	addr := serve(t, s)
	stream, closeStream := openEvents(t, addr, "", "")
	defer closeStream()
	_, res := do(t, s, "CreateConnection", `{"MediaTxIP":"127.0.0.1","MediaTxPort":"40000"}`)
	id := res["ConnectionId"]
	code, res := do(t, s, "GatherDigits", `{"ConnectionId":"`+id+`","TermCondMaxDigits":3,"TermCondDigit":"#","State":"pin"}`)
	if code != 200 || res["OperationId"] == "" {
		t.Fatalf("GatherDigits: %d %v", code, res)
	}
	op := res["OperationId"]
	for _, k := range []byte("4#") {
		c, _ := session.DigitCode(k)
		if err := table.ReceiveDigit(id, c); err != nil {
			t.Fatal(err)
		}
	}
	for {
		typ, v := stream.next()
		if typ == "DigitReceived" {
			continue
		}
		if typ != "GatherDigits_Complete" || v["OperationId"] != op || v["Digits"] != "4#" || v["TerminationCondition"] != "digit" ||
			v["State"] != "pin" || v["ResultCode"] != "0" || v["ConnectionId"] != id || v["ElapsedTime"] == "" {
			t.Fatalf("%s %v", typ, v)
		}
		break
	}
	if code, res := do(t, s, "GatherDigits", `{"ConnectionId":"`+id+`","TermCondDigit":"X"}`); code != 400 || res["ResultCode"] != "27" {
		t.Fatalf("bad TermCondDigit: %d %v", code, res)
	}
	_, res = do(t, s, "GatherDigits", `{"ConnectionId":"`+id+`","TermCondMaxTime":60000}`)
	if code, res := do(t, s, "StopMediaOperation", `{"ConnectionId":"`+id+`"}`); code != 200 || res["Stopped"] != "1" {
		t.Fatalf("StopMediaOperation: %d %v", code, res)
	}
	for {
		typ, v := stream.next()
		if typ == "GatherDigits_Complete" {
			if v["TerminationCondition"] != "userstop" || v["OperationId"] != res["OperationId"] {
				t.Fatalf("%v", v)
			}
			break
		}
	}
	do(t, s, "DeleteConnection", `{"ConnectionId":"`+id+`"}`)
}

// DetectSilence over HTTP: a connection nobody talks on is silent, so the
// operation completes with "silence" on the event stream; SilenceTime is
// required (26).
func TestDetectSilenceAction(t *testing.T) {
	s, _, _ := newServer(t, "")
	addr := serve(t, s)
	stream, closeStream := openEvents(t, addr, "", "")
	defer closeStream()
	_, res := do(t, s, "CreateConnection", `{"MediaTxIP":"127.0.0.1","MediaTxPort":"40002"}`)
	id := res["ConnectionId"]
	if code, res := do(t, s, "DetectSilence", `{"ConnectionId":"`+id+`"}`); code != 400 || res["ResultCode"] != "26" {
		t.Fatalf("DetectSilence without SilenceTime: %d %v", code, res)
	}
	code, res := do(t, s, "DetectSilence", `{"ConnectionId":"`+id+`","SilenceTime":200,"State":"quiet"}`)
	if code != 200 || res["OperationId"] == "" {
		t.Fatalf("DetectSilence: %d %v", code, res)
	}
	for {
		typ, v := stream.next()
		if typ != "DetectSilence_Complete" {
			continue
		}
		if v["OperationId"] != res["OperationId"] || v["TerminationCondition"] != "silence" || v["State"] != "quiet" {
			t.Fatalf("%v", v)
		}
		break
	}
	do(t, s, "DeleteConnection", `{"ConnectionId":"`+id+`"}`)
}
