#!/usr/bin/env python3
"""A SIP user agent from an untrusted source, on raw UDP with the Python
standard library only: it computes digest responses (RFC 7616 / RFC 8760,
MD5 and SHA-256, qop=auth) itself and checks the gateway's admission.

  digest_ua.py --gw 127.0.0.1:PORT --bind 127.0.0.2 --http http://127.0.0.1:HPORT \
      --mode nousers|users [--user alice --password pw --nonce-ttl 2]

mode nousers: every INVITE is 403, the same for conf-1 and nosuchroute.
mode users:   401 with SHA-256 then MD5 challenges (the same for any route);
              an authenticated INVITE (each algorithm) joins a conference
              (200, ACK, BYE); a wrong password is 403; the same credentials
              played again are 403; an expired nonce is 401 stale=true.
After every refused attempt, /metrics must show every RTP port free and no
connection. Exits 0 when everything held, 1 with a reason otherwise.
"""
import argparse
import hashlib
import random
import re
import socket
import sys
import time
import urllib.request

ARGS = None
SOCK = None


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def metric(name):
    with urllib.request.urlopen(ARGS.http + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
    return 0.0


def baseline():
    return metric("mediagw_rtp_ports_free"), metric("mediagw_connections_active")


def nothing_allocated(base, what):
    # The refusal is sent before anything could be allocated; poll briefly
    # anyway, so that a slow machine does not fail a correct gateway.
    for _ in range(20):
        if baseline() == base:
            return
        time.sleep(0.05)
    fail("%s allocated: ports free/connections %s, baseline %s" % (what, baseline(), base))


def local():
    return "%s:%d" % SOCK.getsockname()


def request(method, user, call_id, cseq, from_tag, to_tag="", extra=(), body=""):
    host = ARGS.gw
    branch = "z9hG4bK-%08x" % random.getrandbits(32)
    to = "<sip:%s@%s>" % (user, host) + (";tag=" + to_tag if to_tag else "")
    lines = [
        "%s sip:%s@%s SIP/2.0" % (method, user, host),
        "Via: SIP/2.0/UDP %s;branch=%s;rport" % (local(), branch),
        "Max-Forwards: 70",
        "From: <sip:pyua@%s>;tag=%s" % (local(), from_tag),
        "To: " + to,
        "Call-ID: " + call_id,
        "CSeq: %d %s" % (cseq, method),
        "Contact: <sip:pyua@%s>" % local(),
    ]
    lines += list(extra)
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def transact(msg, cseq, method):
    """Sends msg and returns the first final response to it (text)."""
    SOCK.sendto(msg, tuple_addr(ARGS.gw))
    deadline = time.time() + 15
    while time.time() < deadline:
        SOCK.settimeout(max(0.1, deadline - time.time()))
        try:
            data, _ = SOCK.recvfrom(65535)
        except socket.timeout:
            break
        res = data.decode(errors="replace")
        if ("CSeq: %d %s" % (cseq, method)) not in res:
            continue
        code = int(res.split(" ", 2)[1])
        if code >= 200:
            return code, res
    fail("no final response to %s" % method)


def tuple_addr(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def headers(res, name):
    out = []
    for line in res.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        n, _, v = line.partition(":")
        if n.strip().lower() == name.lower():
            out.append(v.strip())
    return out


def shape(res):
    lines = res.split("\r\n\r\n", 1)[0].split("\r\n")
    return [lines[0]] + [l.partition(":")[0] for l in lines[1:]]


def params(challenge):
    return {m[0].lower(): m[1] if m[1] else m[2]
            for m in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', challenge)}


def authorization(challenge, method, uri, user, password, nc):
    p = params(challenge)
    alg = p.get("algorithm", "MD5")
    h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[alg]

    def H(s):
        return h(s.encode()).hexdigest()

    cnonce = "%016x" % random.getrandbits(64)
    ncs = "%08x" % nc
    ha1 = H("%s:%s:%s" % (user, p["realm"], password))
    ha2 = H("%s:%s" % (method, uri))
    resp = H(":".join([ha1, p["nonce"], ncs, cnonce, "auth", ha2]))
    return ('Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", '
            'response="%s", algorithm=%s, cnonce="%s", qop=auth, nc=%s'
            % (user, p["realm"], p["nonce"], uri, resp, alg, cnonce, ncs))


SDP = ("v=0\r\no=pyua 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


class Call:
    """One INVITE dialog attempt: Call-ID, From tag and CSeq."""

    def __init__(self, user):
        self.user = user
        self.call_id = "py-%08x@%s" % (random.getrandbits(32), ARGS.bind)
        self.tag = "%08x" % random.getrandbits(32)
        self.cseq = 0
        self.sdp = SDP.format(ip=ARGS.bind)

    def invite(self, extra=()):
        self.cseq += 1
        msg = request("INVITE", self.user, self.call_id, self.cseq, self.tag, extra=extra, body=self.sdp)
        code, res = transact(msg, self.cseq, "INVITE")
        self.last = msg
        return code, res

    def ack(self, res):
        m = re.search(r"^To: .*;tag=([^;\r\n]+)", res, re.M)
        to_tag = m.group(1) if m else ""
        SOCK.sendto(request("ACK", self.user, self.call_id, self.cseq, self.tag, to_tag), tuple_addr(ARGS.gw))
        return to_tag

    def bye(self, to_tag):
        self.cseq += 1
        code, _ = transact(request("BYE", self.user, self.call_id, self.cseq, self.tag, to_tag), self.cseq, "BYE")
        return code


def mode_nousers():
    base = baseline()
    shapes = []
    for user in ("conf-1", "nosuchroute"):
        c = Call(user)
        code, res = c.invite()
        if code != 403:
            fail("INVITE %s without users_file: %d, want 403" % (user, code))
        c.ack(res)
        shapes.append(shape(res))
        nothing_allocated(base, "403 to %s" % user)
    if shapes[0] != shapes[1]:
        fail("403s differ between conf-1 and nosuchroute: %s / %s" % shapes)
    print("PASS untrusted without users_file: 403, the same for conf-1 and nosuchroute")


def mode_users():
    base = baseline()
    uri = lambda user: "sip:%s@%s" % (user, ARGS.gw)
    # 1. A challenge, the same whatever the route.
    shapes = []
    for user in ("conf-py", "nosuchroute"):
        c = Call(user)
        code, res = c.invite()
        ch = headers(res, "WWW-Authenticate")
        if code != 401 or len(ch) != 2:
            fail("INVITE %s without credentials: %d %s, want 401 with two challenges" % (user, code, ch))
        if "algorithm=SHA-256" not in ch[0] or "algorithm=MD5" not in ch[1] or 'qop="auth"' not in ch[0]:
            fail("challenges not SHA-256 then MD5 with qop=auth: %s" % ch)
        c.ack(res)
        shapes.append(shape(res))
        nothing_allocated(base, "401 to %s" % user)
    if shapes[0] != shapes[1]:
        fail("401s differ between conf-py and nosuchroute: %s / %s" % tuple(shapes))
    print("PASS 401 with SHA-256 then MD5 challenges, the same for conf-py and nosuchroute")

    # 2. Authenticated INVITE with each algorithm: joined, then BYE.
    for i, alg in enumerate(("SHA-256", "MD5")):
        c = Call("conf-py")
        code, res = c.invite()
        c.ack(res)
        ch = headers(res, "WWW-Authenticate")[i]
        auth = authorization(ch, "INVITE", uri("conf-py"), ARGS.user, ARGS.password, 1)
        code, res = c.invite([auth])
        if code != 200:
            fail("authenticated INVITE (%s): %d" % (alg, code))
        to_tag = c.ack(res)
        if metric("mediagw_connections_active") != base[1] + 1:
            fail("joined call (%s) holds no connection" % alg)
        # The same INVITE with the same credentials, as a captured request
        # played back in a new transaction: refused.
        rc = Call("conf-py")
        code, res = rc.invite([auth])
        if code != 403:
            fail("replayed credentials (%s): %d, want 403" % (alg, code))
        if c.bye(to_tag) != 200:
            fail("BYE (%s)" % alg)
        nothing_allocated(base, "call after BYE (%s)" % alg)
        print("PASS %s: 401, authenticated INVITE joined (200, ACK, BYE), replay refused 403" % alg)

    # 3. A wrong password.
    c = Call("conf-py")
    code, res = c.invite()
    c.ack(res)
    auth = authorization(headers(res, "WWW-Authenticate")[0], "INVITE", uri("conf-py"), ARGS.user, ARGS.password + "x", 1)
    code, res = c.invite([auth])
    if code != 403:
        fail("wrong password: %d, want 403" % code)
    nothing_allocated(base, "403 to a wrong password")
    print("PASS wrong password: 403")

    # 4. An expired nonce: a fresh challenge with stale=true.
    c = Call("conf-py")
    code, res = c.invite()
    c.ack(res)
    ch = headers(res, "WWW-Authenticate")[1]
    time.sleep(ARGS.nonce_ttl + 1)
    code, res = c.invite([authorization(ch, "INVITE", uri("conf-py"), ARGS.user, ARGS.password, 1)])
    ch2 = headers(res, "WWW-Authenticate")
    if code != 401 or not ch2 or "stale=true" not in ch2[0]:
        fail("expired nonce: %d %s, want 401 stale=true" % (code, ch2))
    c.ack(res)
    nothing_allocated(base, "401 stale")
    print("PASS expired nonce: 401 stale=true")


def main():
    global ARGS, SOCK
    ap = argparse.ArgumentParser()
    ap.add_argument("--gw", required=True)
    ap.add_argument("--bind", default="127.0.0.2")
    ap.add_argument("--http", required=True)
    ap.add_argument("--mode", choices=("nousers", "users"), required=True)
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", default="")
    ap.add_argument("--nonce-ttl", type=float, default=2)
    ARGS = ap.parse_args()
    SOCK = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    SOCK.bind((ARGS.bind, 0))
    if ARGS.mode == "nousers":
        mode_nousers()
    else:
        mode_users()


if __name__ == "__main__":
    main()
