package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
)

// The cluster of issue 15, as deploy/cluster runs it: three gateways
// (deploy/cluster/node1-3.yaml) on 127.0.0.2, .3 and .4, one Redis, and
// Kamailio (deploy/cluster/kamailio.cfg) spreading SIP over them by the
// R-URI user. The tests change only the Redis address, the state paths,
// and a shorter TTL and grace (1 s each) so a dead node is noticed sooner.
type testCluster struct {
	redis   *redisProc
	nodes   [3]*Gateway
	kam     *kamailio
	kamPort int
	dir     string
}

const clusterPrefix = "mediagw:" // deploy/cluster's cluster.redis.prefix

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	requireTool(t, "sipp")
	requireTool(t, "kamailio")
	c := &testCluster{redis: startRedisServer(t), dir: t.TempDir()}
	var ds strings.Builder
	for i := range c.nodes {
		c.nodes[i] = startClusterNode(t, i+1, c.redis.addr, c.dir)
		fmt.Fprintf(&ds, "1 sip:%s\n", c.nodes[i].SIP)
	}
	list := filepath.Join(c.dir, "dispatcher.list")
	if err := os.WriteFile(list, []byte(ds.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c.kamPort = freeUDPPort(t)
	c.kam = runKamailio(t, "../../deploy/cluster/kamailio.cfg", c.kamPort, fmt.Sprintf("DS_LIST=%q", list), "DS_PING=1")
	return c
}

// startClusterNode runs deploy/cluster/node<i>.yaml.
func startClusterNode(t *testing.T, i int, redisAddr, dir string) *Gateway {
	t.Helper()
	bin := gatewayBinary(t, false)
	src, err := os.ReadFile(fmt.Sprintf("../../deploy/cluster/node%d.yaml", i))
	if err != nil {
		t.Fatal(err)
	}
	state := fmt.Sprintf("mediagw-node%d.state", i)
	cfg := string(src)
	for _, r := range [][2]string{{"127.0.0.1:6379", redisAddr}, {state, filepath.Join(dir, state)}, {"ttl: 3s", "ttl: 1s"}, {"grace: 2s", "grace: 1s"}} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("deploy/cluster/node%d.yaml has no %q", i, r[0])
		}
		cfg = strings.ReplaceAll(cfg, r[0], r[1])
	}
	path := filepath.Join(dir, fmt.Sprintf("node%d.yaml", i))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ip := fmt.Sprintf("127.0.0.%d", i+1)
	g := &Gateway{t: t, HTTP: "http://" + ip + ":8080", MGCP: ip + ":2427", SIP: ip + ":5060",
		RTPMin: 30000, RTPMax: 30999, logs: &lockedBuffer{}, bin: bin, cfgPath: path}
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("node%d log:\n%s", i, tail(g.logs.String(), 40))
		}
	})
	g.launch(t)
	return g
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// sippConf calls each user (conf-N) through Kamailio, at rate calls/s, each
// call held holdMs unless the gateway hangs up first. It returns SIPp's
// error and output once every call ended.
func (c *testCluster) sippConf(t *testing.T, name string, users []string, holdMs, rate int) (error, string) {
	t.Helper()
	sipp := requireTool(t, "sipp")
	tmpl, err := os.ReadFile("testdata/cluster/uac_conf.xml")
	if err != nil {
		t.Fatal(err)
	}
	scen := filepath.Join(c.dir, name+".xml")
	if err := os.WriteFile(scen, bytes.ReplaceAll(tmpl, []byte("@HOLD_MS@"), []byte(strconv.Itoa(holdMs))), 0o644); err != nil {
		t.Fatal(err)
	}
	inf := filepath.Join(c.dir, name+".csv")
	if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+strings.Join(users, ";\n")+";\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errFile := filepath.Join(c.dir, name+".err")
	cmd := exec.CommandContext(ctx, sipp, "-sf", scen, "-inf", inf, fmt.Sprintf("127.0.0.1:%d", c.kamPort),
		"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-mp", strconv.Itoa(freeUDPPort(t)),
		"-m", strconv.Itoa(len(users)), "-r", strconv.Itoa(rate), "-l", strconv.Itoa(len(users)),
		"-nostdin", "-timeout", "90s", "-timeout_error", "-trace_err", "-error_file", errFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(errFile)
		return err, tail(string(out), 15) + "\nerrors:\n" + tail(string(errs), 30)
	}
	return nil, ""
}

func confUsers(from, to, each int) []string {
	var out []string
	for n := from; n <= to; n++ {
		for range each {
			out = append(out, fmt.Sprintf("conf-%d", n))
		}
	}
	return out
}

type clusterConf struct {
	ConferenceID string `json:"ConferenceId"`
	Members      []struct {
		ConnectionID string `json:"ConnectionId"`
	}
	Node      string
	CascadeOf string
}

// conferences is g's listing of every node's conferences; local: g's own
// only (the header a forwarding node sets).
func conferences(t *testing.T, g *Gateway, local bool) []clusterConf {
	t.Helper()
	req, _ := http.NewRequest("GET", g.HTTP+"/v1/conferences", nil)
	if local {
		req.Header.Set("X-Mediagw-Forwarded", "test")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Conferences []clusterConf }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Conferences
}

// waitConferences polls g's listing until want conferences of members
// each are up, and returns them by ID.
func waitConferences(t *testing.T, g *Gateway, want, members int) map[string]clusterConf {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		byID := map[string]clusterConf{}
		dup := ""
		full := 0
		for _, cf := range conferences(t, g, false) {
			if _, seen := byID[cf.ConferenceID]; seen {
				dup = cf.ConferenceID
			}
			byID[cf.ConferenceID] = cf
			if len(cf.Members) == members {
				full++
			}
		}
		if dup != "" {
			t.Fatalf("conference %s is listed by two nodes: %+v", dup, byID[dup])
		}
		if len(byID) == want && full == want {
			return byID
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: %d conferences, %d of them with %d members; want %d", len(byID), full, members, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// actionResponse posts an action and returns its answer and the node
// header.
func actionResponse(t *testing.T, g *Gateway, name string, params map[string]any) (map[string]string, string) {
	t.Helper()
	body, _ := json.Marshal(params)
	resp, err := http.Post(g.HTTP+"/v1/actions/"+name, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out, resp.Header.Get("X-Mediagw-Node")
}

// release names one release event: its type, the ID and the node.
type release struct{ typ, id, node string }

// waitReleases reads events until every one of want was seen, in any order.
func waitReleases(t *testing.T, events <-chan sseEvent, want []release, d time.Duration) {
	t.Helper()
	left := map[release]bool{}
	for _, w := range want {
		left[w] = true
	}
	deadline := time.After(d)
	for len(left) > 0 {
		select {
		case ev := <-events:
			id := ev.data["ConnectionId"]
			if ev.typ == "ConferenceReleased" {
				id = ev.data["ConferenceId"]
			}
			delete(left, release{ev.typ, id, ev.data["Node"]})
		case <-deadline:
			t.Fatalf("within %v, these releases did not come: %v", d, left)
		}
	}
}

// SIPp calls to conf-1..conf-30 through Kamailio land each conference on
// one node, on more than one node in all; an HTTP DeleteConnection of a
// conference sent to a node that does not hold it releases it (answered by
// the owner), and another node's /v1/events shows the release.
func TestClusterConferencesThroughKamailio(t *testing.T) {
	c := startCluster(t)
	events := followEvents(t, c.nodes[2])
	done := make(chan [2]string, 1)
	go func() {
		err, out := c.sippConf(t, "members", confUsers(1, 30, 2), 8000, 30)
		done <- [2]string{fmt.Sprint(err), out}
	}()
	confs := waitConferences(t, c.nodes[0], 30, 2)
	perNode := map[string]int{}
	for _, cf := range confs {
		perNode[cf.Node]++
	}
	t.Logf("conferences per node: %v", perNode)
	if len(perNode) < 2 {
		t.Fatalf("every conference on one node: %v (the R-URI hash should spread them)", perNode)
	}
	for i, g := range c.nodes { // each node's own listing agrees with the aggregated one
		for _, cf := range conferences(t, g, true) {
			if cf.Node != fmt.Sprintf("node%d", i+1) || confs[cf.ConferenceID].Node != cf.Node {
				t.Fatalf("node%d lists %s as %s's; the cluster says %s", i+1, cf.ConferenceID, cf.Node, confs[cf.ConferenceID].Node)
			}
		}
	}
	// DeleteConnection of a conference, sent to a node that does not hold it.
	var victim clusterConf
	for _, cf := range confs {
		if cf.Node != "node3" {
			victim = cf
			break
		}
	}
	other := c.nodes[0]
	if victim.Node == "node1" {
		other = c.nodes[1]
	}
	res, answeredBy := actionResponse(t, other, "DeleteConnection", map[string]any{"ConferenceId": victim.ConferenceID})
	if res["ResultCode"] != "0" || res["Scope"] != "conference" || answeredBy != victim.Node {
		t.Fatalf("DeleteConnection of %s (held by %s) sent to another node: %v, answered by %q", victim.ConferenceID, victim.Node, res, answeredBy)
	}
	want := []release{{"ConferenceReleased", victim.ConferenceID, victim.Node}}
	for _, m := range victim.Members {
		want = append(want, release{"ConnectionReleased", m.ConnectionID, victim.Node})
	}
	waitReleases(t, events, want, 3*time.Second)
	if _, still := conferencesByID(t, c.nodes[2])[victim.ConferenceID]; still {
		t.Fatalf("conference %s still listed after its release", victim.ConferenceID)
	}
	// An ID nobody holds: the table's answer for an unknown conference.
	if res, _ := actionResponse(t, c.nodes[1], "DeleteConnection", map[string]any{"ConferenceId": "no-such-room"}); res["ResultCode"] != "24" {
		t.Fatalf("unknown conference: %v", res)
	}
	r := <-done
	if r[0] != "<nil>" {
		t.Fatalf("SIPp: %s\n%s", r[0], r[1])
	}
	for i, g := range c.nodes {
		waitGauge(t, g, "mediagw_connections_active", 0, fmt.Sprintf("node%d", i+1))
	}
}

// conferencesByID is g's listing of every node's conferences, by ID.
func conferencesByID(t *testing.T, g *Gateway) map[string]clusterConf {
	out := map[string]clusterConf{}
	for _, cf := range conferences(t, g, false) {
		out[cf.ConferenceID] = cf
	}
	return out
}

func waitGauge(t *testing.T, g *Gateway, name string, want float64, who string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := g.Metrics(t)[name]
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is %v, want %v", who, name, v, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A node killed (SIGKILL) mid-call: Kamailio stops sending to it and new
// calls succeed on the others; the survivors clean its records from the
// registry and announce its releases; started again, it rejoins and its
// own calls come back from its state file (their BYEs, after the restart,
// are answered: SIPp counts no failed call).
func TestClusterNodeKilled(t *testing.T) {
	c := startCluster(t)
	events := followEvents(t, c.nodes[0])
	done := make(chan [2]string, 1)
	go func() {
		err, out := c.sippConf(t, "long", confUsers(1, 30, 1), 15000, 30)
		done <- [2]string{fmt.Sprint(err), out}
	}()
	confs := waitConferences(t, c.nodes[0], 30, 1)
	// The victim: node2 or node3, whichever holds more (node1 streams the events).
	held := map[string][]clusterConf{}
	for _, cf := range confs {
		held[cf.Node] = append(held[cf.Node], cf)
	}
	vi := 1
	if len(held["node3"]) > len(held["node2"]) {
		vi = 2
	}
	victim, name := c.nodes[vi], fmt.Sprintf("node%d", vi+1)
	if len(held[name]) == 0 {
		t.Fatalf("no conference on node2 or node3: %v", held)
	}
	t.Logf("killing %s with %d of the 30 conferences", name, len(held[name]))
	victim.Kill()
	killed := time.Now()
	// Its conference, asked of a survivor at once: the answer for an
	// unknown conference (the owner does not answer), not a hang.
	t0 := time.Now()
	if res, _ := actionResponse(t, c.nodes[0], "DeleteConnection", map[string]any{"ConferenceId": held[name][0].ConferenceID}); res["ResultCode"] != "24" {
		t.Fatalf("DeleteConnection of the dead node's conference: %v", res)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("DeleteConnection of the dead node's conference took %v", d)
	}

	// Its records are cleaned by a survivor and its releases announced.
	var want []release
	for _, cf := range held[name] {
		want = append(want, release{"ConferenceReleased", cf.ConferenceID, name}, release{"ConnectionReleased", cf.Members[0].ConnectionID, name})
	}
	waitReleases(t, events, want, 8*time.Second)
	for !strings.HasPrefix(c.redis.do("EXISTS "+clusterPrefix+"conns:"+name), ":0") {
		if time.Since(killed) > 8*time.Second {
			t.Fatalf("%s's connections still in the registry 8s after the kill", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s cleaned from the registry %v after the kill (ttl 1s, grace 1s)", name, time.Since(killed).Round(time.Millisecond))
	for _, g := range c.nodes {
		if g == victim {
			continue
		}
		waitGauge(t, g, "mediagw_cluster_nodes", 2, "a survivor")
		for _, cf := range conferences(t, g, false) {
			if cf.Node == name {
				t.Fatalf("a survivor still lists %s's conference %s", name, cf.ConferenceID)
			}
		}
	}
	// New calls succeed on the survivors (Kamailio fails over, then probes it out).
	if err, out := c.sippConf(t, "after", confUsers(31, 40, 1), 300, 10); err != nil {
		t.Fatalf("calls after the kill: %v\n%s", err, out)
	}
	// Started again: it rejoins, and its calls come back.
	victim.Restart(t)
	waitGauge(t, c.nodes[0], "mediagw_cluster_nodes", 3, "node1 after the restart")
	back := map[string]clusterConf{}
	for _, cf := range conferences(t, victim, true) {
		back[cf.ConferenceID] = cf
	}
	for _, cf := range held[name] {
		if b, ok := back[cf.ConferenceID]; !ok || len(b.Members) != 1 || b.Members[0].ConnectionID != cf.Members[0].ConnectionID {
			t.Fatalf("%s's conference %s not back after its restart: %+v", name, cf.ConferenceID, back)
		}
	}
	if o := c.redis.do("GET " + clusterPrefix + "conf:" + held[name][0].ConferenceID); !strings.Contains(o, "$") {
		t.Fatalf("the restarted node's conference is not claimed again: %q", o)
	}
	r := <-done
	if r[0] != "<nil>" {
		t.Fatalf("SIPp (calls held across the kill): %s\n%s", r[0], r[1])
	}
	for i, g := range c.nodes {
		waitGauge(t, g, "mediagw_connections_active", 0, fmt.Sprintf("node%d", i+1))
	}
}

// A conference with a member on each node: a SIP phone through Kamailio
// (its R-URI hash picks the holder), an HTTP JoinConference straight to a
// second node and an MGCP CRCX straight to the third. The two others
// cascade to the holder; tone-tagged, everyone hears every other member and
// nobody itself. Then the members leave one by one: each cascade collapses
// with its last member (its link's far end on the holder too), and every
// node ends with nothing.
// cascadeSetup is a conference 77 with a member on each node: the SIP
// phone through Kamailio on the holder, an HTTP member and an MGCP member
// on the other two, each peer sending its tone.
type cascadeSetup struct {
	tones              []float64
	peers              []*TonePeer
	holder             int // 1-3
	httpNode, mgcpNode *Gateway
	ca                 *callAgent
	dlg                *sipgo.DialogClientSession
	httpConn           string
}

func setupCascade(t *testing.T, c *testCluster) cascadeSetup {
	t.Helper()
	tones := []float64{400, 1100, 1700} // SIP (holder), HTTP, MGCP
	peers := make([]*TonePeer, len(tones))
	for i, f := range tones {
		peers[i] = NewTonePeer(t, f, 0)
	}
	phone := newSIPPhone(t, "alice")
	dlg, ans := phone.call(fmt.Sprintf("127.0.0.1:%d", c.kamPort), "conf-77", peers[0])
	peers[0].Run(mediaAddr(t, ans), true, tones...)
	holder := -1
	for _, cf := range conferences(t, c.nodes[0], false) {
		if cf.ConferenceID == "77" {
			fmt.Sscanf(cf.Node, "node%d", &holder)
		}
	}
	if holder < 1 {
		t.Fatal("conf-77 is on no node")
	}
	var others []*Gateway
	for i, g := range c.nodes {
		if i+1 != holder {
			others = append(others, g)
		}
	}
	httpNode, mgcpNode := others[0], others[1]
	res := httpNode.MustAction(t, "JoinConference", map[string]any{"ConferenceId": "77",
		"MediaTxIP": "127.0.0.1", "MediaTxPort": strconv.Itoa(peers[1].Port()), "MediaTxCodec": "PCMU"})
	peers[1].Run(netip.MustParseAddrPort(res["MediaRxIP"]+":"+res["MediaRxPort"]), true, tones...)
	ca := newCallAgent(t)
	ca.attach(mgcpNode)
	code, params, sdp := ca.do("CRCX {tid} cnf/77@mgw MGCP 1.0\r\nC: casc\r\nM: confrnce\r\nL: p:20, a:PCMU\r\n%s", peerSDP(peers[2]))
	if code != 200 {
		t.Fatalf("CRCX cnf/77 on the third node: %d %v", code, params)
	}
	peers[2].Run(mediaAddr(t, sdp), true, tones...)
	return cascadeSetup{tones, peers, holder, httpNode, mgcpNode, ca, dlg, res["ConnectionId"]}
}

func TestClusterCascadedConference(t *testing.T) {
	c := startCluster(t)
	x := setupCascade(t, c)
	tones, peers, holder, httpNode, ca, dlg, httpConn := x.tones, x.peers, x.holder, x.httpNode, x.ca, x.dlg, x.httpConn
	// One conference held, two cascades of it, each with one member and its link.
	holderName := fmt.Sprintf("node%d", holder)
	var held, cascades int
	for _, cf := range conferences(t, c.nodes[0], false) {
		if cf.ConferenceID != "77" {
			continue
		}
		switch {
		case cf.Node == holderName && cf.CascadeOf == "":
			held++
			if len(cf.Members) != 3 { // the phone and the two links
				t.Fatalf("the holder's conference has %d members, want 3: %+v", len(cf.Members), cf)
			}
		case cf.CascadeOf == holderName && len(cf.Members) == 2:
			cascades++
		default:
			t.Fatalf("unexpected conference 77: %+v", cf)
		}
	}
	if held != 1 || cascades != 2 {
		t.Fatalf("conference 77: %d held, %d cascades; want 1 and 2", held, cascades)
	}
	hears := []map[float64]bool{{1100: true, 1700: true}, {400: true, 1700: true}, {400: true, 1100: true}}
	waitPackets(t, 25, peers...)
	for _, p := range peers {
		p.Reset()
	}
	waitPackets(t, 50, peers...)
	for i, p := range peers {
		AssertHearing(t, fmt.Sprintf("member %.0f Hz (%s)", tones[i], []string{"SIP", "HTTP", "MGCP"}[i]), p, tones, hears[i])
	}

	// The HTTP member leaves: its cascade collapses; the others still hear each other.
	if r := httpNode.MustAction(t, "DeleteConnection", map[string]any{"ConnectionId": httpConn}); r["ConferenceReleased"] != "true" {
		t.Fatalf("the HTTP member's cascade did not collapse with it: %v", r)
	}
	peers[1].Close()
	waitGauge(t, httpNode, "mediagw_connections_active", 0, "the HTTP member's node")
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := 0
		for _, cf := range conferences(t, c.nodes[holder-1], true) {
			if cf.ConferenceID == "77" {
				n = len(cf.Members)
			}
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the holder's conference has %d members after the HTTP member's cascade collapsed, want 2", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range []*TonePeer{peers[0], peers[2]} {
		p.Reset()
	}
	waitPackets(t, 40, peers[0], peers[2])
	AssertHearing(t, "SIP member after the HTTP member left", peers[0], tones, map[float64]bool{1700: true})
	AssertHearing(t, "MGCP member after the HTTP member left", peers[2], tones, map[float64]bool{400: true})

	// The MGCP member leaves, then the phone hangs up: nothing is left anywhere.
	if code, params, _ := ca.do("DLCX {tid} cnf/77@mgw MGCP 1.0\r\n"); code != 250 && code != 200 {
		t.Fatalf("DLCX: %d %v", code, params)
	}
	if err := dlg.Bye(context.Background()); err != nil {
		t.Fatalf("BYE: %v", err)
	}
	for i, g := range c.nodes {
		waitGauge(t, g, "mediagw_connections_active", 0, fmt.Sprintf("node%d", i+1))
		waitGauge(t, g, "mediagw_conferences_active", 0, fmt.Sprintf("node%d", i+1))
	}
}

// Redis restarted (all it held lost) while calls come and go: every node
// registers again with the same index, rewrites its connections and its
// conference claims, and nothing is held by two nodes afterwards; calls
// made after the restart succeed.
func TestClusterRedisRestart(t *testing.T) {
	c := startCluster(t)
	done := make(chan [2]string, 1)
	go func() {
		err, out := c.sippConf(t, "during", confUsers(1, 20, 3), 6000, 15)
		done <- [2]string{fmt.Sprint(err), out}
	}()
	time.Sleep(2 * time.Second) // calls arriving
	c.redis.kill()
	time.Sleep(1500 * time.Millisecond)
	c.redis.start()
	r := <-done
	for i, g := range c.nodes {
		t.Logf("node%d: %v conferences made unclaimed while Redis was away", i+1, g.Metrics(t)["mediagw_cluster_unclaimed_conferences_total"])
	}
	if r[0] != "<nil>" {
		t.Fatalf("SIPp across the Redis restart: %s\n%s", r[0], r[1])
	}
	for i, g := range c.nodes {
		waitGauge(t, g, "mediagw_cluster_nodes", 3, fmt.Sprintf("node%d after the Redis restart", i+1))
	}
	go func() {
		err, out := c.sippConf(t, "after", confUsers(1, 20, 2), 4000, 20)
		done <- [2]string{fmt.Sprint(err), out}
	}()
	confs := waitConferences(t, c.nodes[0], 20, 2)
	for id, cf := range confs {
		got := c.redis.get(clusterPrefix + "conf:" + id)
		if got != cf.Node {
			t.Fatalf("conference %s is held by %s, the registry says %q", id, cf.Node, got)
		}
	}
	for i := range c.nodes {
		name := fmt.Sprintf("node%d", i+1)
		n := 0
		for _, cf := range confs {
			if cf.Node == name {
				n += len(cf.Members)
			}
		}
		if got := c.redis.do("SCARD " + clusterPrefix + "conns:" + name); got != fmt.Sprintf(":%d", n) {
			t.Fatalf("%s holds %d connections, the registry lists %s", name, n, got)
		}
	}
	r = <-done
	if r[0] != "<nil>" {
		t.Fatalf("SIPp after the Redis restart: %s\n%s", r[0], r[1])
	}
}

// The holder of a cascaded conference killed (SIGKILL): once a survivor
// declares it dead, both cascades that pointed at it are released on their
// nodes with their members (the MGCP call agent gets a DLCX for its
// connection), and nothing is left on the survivors.
func TestClusterCascadeHolderKilled(t *testing.T) {
	c := startCluster(t)
	x := setupCascade(t, c)
	waitPackets(t, 25, x.peers...)
	c.nodes[x.holder-1].Kill()
	killed := time.Now()
	for _, g := range []*Gateway{x.httpNode, x.mgcpNode} {
		waitGauge(t, g, "mediagw_connections_active", 0, "a survivor with a cascade of the dead holder's conference")
		waitGauge(t, g, "mediagw_conferences_active", 0, "a survivor with a cascade of the dead holder's conference")
	}
	t.Logf("both cascades released %v after the holder's kill (ttl 1s, grace 1s)", time.Since(killed).Round(time.Millisecond))
	deadline := time.Now().Add(5 * time.Second)
	for {
		dlcx := false
		for _, cmd := range x.ca.commands() {
			if strings.HasPrefix(cmd, "DLCX ") {
				dlcx = true
			}
		}
		if dlcx {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call agent got no DLCX for its member of the released cascade: %q", x.ca.commands())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
