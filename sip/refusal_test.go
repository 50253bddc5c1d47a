package sip

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"

	"github.com/mediagw/mediagw/session"
)

func TestRejectCountsEveryRefusalLogsOncePerSource(t *testing.T) {
	var out bytes.Buffer
	l := logrus.New()
	l.SetOutput(&out)
	table := session.New(session.Config{}, nil, nil, nil)
	s, err := New(DefaultConfig(), DefaultRoutes(), nil, table, logrus.NewEntry(l), nil)
	if err != nil {
		t.Fatal(err)
	}
	entry := func() *logrus.Entry { return s.log }
	for i := 0; i < 5; i++ {
		s.reject(RefusedUntrusted, "192.0.2.7:5060", entry, "request refused")
	}
	s.reject(RefusedRate, "192.0.2.8:5060", entry, "request refused")
	if got := testutil.ToFloat64(s.met.refused.WithLabelValues(RefusedUntrusted)); got != 5 {
		t.Errorf("refused{untrusted} = %v, want 5", got)
	}
	if got := testutil.ToFloat64(s.met.refused.WithLabelValues(RefusedRate)); got != 1 {
		t.Errorf("refused{rate} = %v, want 1", got)
	}
	if n := strings.Count(out.String(), "request refused"); n != 2 {
		t.Errorf("%d log lines, want one per source (2):\n%s", n, out.String())
	}
	if !strings.Contains(out.String(), "remote=192.0.2.7") {
		t.Errorf("log line does not name the source:\n%s", out.String())
	}
}
