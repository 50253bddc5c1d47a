package control

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediagw/mediagw/confbridge"
	"github.com/mediagw/mediagw/rtpproxy"
	"github.com/mediagw/mediagw/session"
)

// Unit tests here bind RTP ports 34900-34999 (the e2e blocks stop at 34899).
func newServer(t testing.TB, token string) (*Server, *session.Table, *rtpproxy.Pool) {
	t.Helper()
	cfg := rtpproxy.DefaultConfig()
	cfg.Bind, cfg.PortMin, cfg.PortMax = "127.0.0.1", 34900, 34999
	pool, err := rtpproxy.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() }) // unbinds the pairs it keeps bound for reuse; stops its pollers
	engine := confbridge.NewEngine(confbridge.Config{Ptime: 20 * time.Millisecond})
	table := session.New(session.Config{Resources: session.DefaultResources()}, pool, engine, nil)
	reg := prometheus.NewRegistry()
	if err := table.Register(reg); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Listen: "127.0.0.1:0", Token: token}, table, logEntry(), reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		table.Shutdown()
		engine.Close()
		if pool.FreePairs() != pool.Pairs() {
			t.Errorf("ports leaked: %d of %d pairs free", pool.FreePairs(), pool.Pairs())
		}
	})
	return s, table, pool
}

func do(t *testing.T, s *Server, action, body string) (int, map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/actions/"+action, strings.NewReader(body))
	s.Handler().ServeHTTP(rec, req)
	var out map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: %v: %s", action, err, rec.Body.String())
	}
	return rec.Code, out
}

func TestActionsAndResultCodes(t *testing.T) {
	s, table, _ := newServer(t, "")
	code, out := do(t, s, "CreateConnection", `{"MediaTxIP":"127.0.0.1","MediaTxPort":4000,"MediaTxCodec":"G711u"}`)
	if code != 200 || out["ResultCode"] != "0" || out["Branch"] != "Success" || out["ConnectionId"] == "" || out["MediaRxPort"] == "" {
		t.Fatalf("CreateConnection: %d %v", code, out)
	}
	id := out["ConnectionId"]
	c, err := table.Connection(id)
	if err != nil || c.Codec != "PCMU" || c.Owner != session.FrontHTTP {
		t.Fatalf("connection %+v %v", c, err)
	}
	// A conference created from MediaTx* makes its own connection.
	_, out = do(t, s, "CreateConference", `{"MediaTxIP":"127.0.0.1","MediaTxPort":"4002","ConferenceId":"room"}`)
	if out["ResultCode"] != "0" || out["ConferenceId"] != "room" || out["ConnectionId"] == "" {
		t.Fatalf("CreateConference: %v", out)
	}
	_, out = do(t, s, "JoinConference", `{"ConnectionId":"`+id+`","ConferenceId":"room","ReceiveOnly":true}`)
	if out["ResultCode"] != "0" {
		t.Fatalf("JoinConference: %v", out)
	}
	cf, _ := table.Conference("room")
	if len(cf.Members) != 2 || !cf.Members[1].ReceiveOnly {
		t.Fatalf("members %+v", cf.Members)
	}
	_, out = do(t, s, "SetConfereeAttribute", `{"ConnectionId":"`+id+`","ConferenceId":"room","Mute":"true"}`)
	if out["ResultCode"] != "0" {
		t.Fatalf("SetConfereeAttribute: %v", out)
	}
	cf, _ = table.Conference("room")
	if !cf.Members[1].Muted || !cf.Members[1].ReceiveOnly {
		t.Fatalf("attributes must accumulate: %+v", cf.Members[1])
	}
	code, out = do(t, s, "LeaveConference", `{"ConnectionId":"`+id+`"}`)
	if code != 400 || out["ResultCode"] != "26" {
		t.Fatalf("LeaveConference without ConferenceId: %d %v", code, out)
	}
	_, out = do(t, s, "LeaveConference", `{"ConnectionId":"`+id+`","ConferenceId":"room"}`)
	if out["ResultCode"] != "0" {
		t.Fatalf("LeaveConference: %v", out)
	}
	_, out = do(t, s, "ModifyConnection", `{"ConnectionId":"`+id+`","MediaTxIP":"127.0.0.1","MediaTxPort":4100,"Mode":"recvonly"}`)
	if out["ResultCode"] != "0" {
		t.Fatalf("ModifyConnection: %v", out)
	}
	code, out = do(t, s, "DeleteConnection", `{"ConferenceId":"room"}`)
	if code != 200 || out["ConferenceReleased"] != "true" {
		t.Fatalf("DeleteConnection: %d %v", code, out)
	}
	code, out = do(t, s, "DeleteConnection", `{"ConnectionId":"`+id+`"}`)
	if code != 200 {
		t.Fatalf("DeleteConnection: %d %v", code, out)
	}
	code, out = do(t, s, "DeleteConnection", `{"ConnectionId":"`+id+`"}`)
	if code != 404 || out["ResultCode"] != "23" || out["Branch"] != "Failure" {
		t.Fatalf("second DeleteConnection: %d %v", code, out)
	}
	// Reserve, then complete with CreateConnection.
	_, out = do(t, s, "ReserveConnection", `{"MediaRxCodec":"PCMA"}`)
	rid := out["ConnectionId"]
	if out["ResultCode"] != "0" || rid == "" {
		t.Fatalf("ReserveConnection: %v", out)
	}
	_, out = do(t, s, "CreateConnection", `{"ConnectionId":"`+rid+`","MediaTxIP":"127.0.0.1","MediaTxPort":4200}`)
	if out["ResultCode"] != "0" || out["ConnectionId"] != rid {
		t.Fatalf("completing a reservation: %v", out)
	}
}

// An action that finishes after its Timeout answers Branch "Timeout" and
// undoes what it made: nothing outlives the caller's timeout.
func TestTimeoutBranchUndoes(t *testing.T) {
	s, table, pool := newServer(t, "")
	release, created := make(chan struct{}), make(chan struct{})
	actions["SlowCreate"] = func(tb *session.Table, p params) (result, undo, error) {
		<-release
		defer close(created)
		return createConnection(tb, p)
	}
	defer delete(actions, "SlowCreate")
	code, out := do(t, s, "SlowCreate", `{"MediaTxIP":"127.0.0.1","MediaTxPort":4000,"Timeout":50}`)
	if code != http.StatusGatewayTimeout || out["Branch"] != "Timeout" || out["ResultCode"] != "13" {
		t.Fatalf("slow action: %d %v", code, out)
	}
	close(release)
	<-created
	deadline := time.Now().Add(2 * time.Second)
	// The undo runs on the abandoned action's goroutine: wait until the
	// connection is gone and its ports are back.
	for len(table.Connections()) != 0 || pool.FreePairs() != pool.Pairs() {
		if time.Now().After(deadline) {
			t.Fatalf("connection made after the timeout was not undone: %+v", table.Connections())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, out = do(t, s, "CreateConnection", `{"MediaTxIP":"127.0.0.1","MediaTxPort":4000,"Timeout":5000}`)
	if out["Branch"] != "Success" {
		t.Fatalf("an action within its Timeout: %v", out)
	}
}

func TestBearerToken(t *testing.T) {
	s, _, _ := newServer(t, "tok")
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/v1/connections", "", 401},
		{"GET", "/v1/connections", "Bearer tok", 200},
		{"GET", "/v1/conferences", "Bearer tok", 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "Bearer tok", 200},
		{"GET", "/healthz", "", 200},
		{"POST", "/v1/actions/DeleteConnection", "Bearer nope", 401},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader("{}"))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s (%q): %d, want %d", tc.method, tc.path, tc.auth, rec.Code, tc.want)
		}
	}
}

func FuzzParams(f *testing.F) {
	f.Add(`{"MediaTxIP":"127.0.0.1","MediaTxPort":4000,"MediaTxCodec":"PCMU","Mute":true}`)
	f.Add(`{"MediaTxPort":"x","Timeout":-1}`)
	f.Add(`{"MediaTxIP":["a"],"Mute":"maybe"}`)
	f.Fuzz(func(t *testing.T, body string) {
		var p params
		if json.Unmarshal([]byte(body), &p) != nil {
			return
		}
		cp, err := p.connParams(false)
		if err == nil && cp.Remote.IsValid() && cp.Remote.Port() == 0 {
			t.Fatalf("accepted port 0 from %s", body)
		}
		if err != nil && session.ResultCode(err) != session.CodeInvalidValue && session.ResultCode(err) != session.CodeInsufficientParams {
			t.Fatalf("parameter error with code %d: %v", session.ResultCode(err), err)
		}
		_, _ = p.attrs(session.MemberAttrs{})
		_, _ = p.millis("Timeout")
	})
}
