package ctl

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

// TestEventsFollowsSSE reads a Server-Sent Events stream as /v1/events
// serves it (DESIGN §8): one event: and one data: line per event, comments
// and keep-alives between, filters passed as query parameters.
func TestEventsFollowsSSE(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/events" {
			http.NotFound(w, r)
			return
		}
		query = r.URL.RawQuery
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte(": hello\n\n" +
			"event: DigitReceived\ndata: {\"ConnectionId\":\"3\",\"Digit\":\"5\"}\n\n" +
			"\n" +
			"event: ConnectionReleased\ndata: {\"ConnectionId\":\"3\",\"ConferenceId\":\"7\"}\n\n" +
			"event: ConferenceReleased\ndata: {\"ConferenceId\":\"7\"}\n\n"))
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	code := Main([]string{"-addr", srv.URL, "-o", "json", "events", "-conference", "7", "-n", "2"}, &out, &errb, noEnv)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if query != "ConferenceId=7" {
		t.Errorf("query %q, want ConferenceId=7", query)
	}
	want := `{"data":{"ConnectionId":"3","Digit":"5"},"event":"DigitReceived"}` + "\n" +
		`{"data":{"ConferenceId":"7","ConnectionId":"3"},"event":"ConnectionReleased"}` + "\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	if code := Main([]string{"-addr", srv.URL, "events"}, &out, &errb, noEnv); code != 0 {
		t.Fatalf("follow to the end: exit %d", code)
	}
	if n := strings.Count(out.String(), "\n"); n != 3 || !strings.Contains(out.String(), " ConferenceReleased ConferenceId=7") {
		t.Errorf("table output:\n%s", out.String())
	}
}

func TestEventsRefusesNonStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	}))
	defer srv.Close()
	var out, errb bytes.Buffer
	if code := Main([]string{"-addr", srv.URL, "events"}, &out, &errb, noEnv); code != ExitTransport {
		t.Fatalf("exit %d, want %d", code, ExitTransport)
	}
}

func TestParseMetrics(t *testing.T) {
	raw := []byte(`# HELP mediagw_connections_active Open connections.
# TYPE mediagw_connections_active gauge
mediagw_connections_active 3
mediagw_resources_in_use{pool="rtp"} 3
mediagw_mgcp_commands_total{code="200",verb="CRCX"} 1.5e+06
go_goroutines 42
go_gc_duration_seconds{quantile="0"} 1e-05
http_requests_total{path="a b"} 7
`)
	got, err := parseMetrics(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"mediagw_connections_active":                          3,
		`mediagw_resources_in_use{pool="rtp"}`:                3,
		`mediagw_mgcp_commands_total{code="200",verb="CRCX"}`: 1.5e6,
		"go_goroutines": 42,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, err := parseMetrics([]byte("mediagw_x notanumber\n")); err == nil {
		t.Error("a bad value parsed")
	}
}

func TestExitCodes(t *testing.T) {
	for rc, want := range map[string]int{"0": 0, "1": 0, "5": 5, "23": 23, "x": ExitTransport} {
		if got := exitCode(map[string]string{"ResultCode": rc}); got != want {
			t.Errorf("ResultCode %s → exit %d, want %d", rc, got, want)
		}
	}
}
