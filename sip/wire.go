package sip

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	gosip "github.com/emiago/sipgo/sip"
)

// response is a response of ours before it is built: sipgo's
// NewResponseFromRequest copies what RFC 3261 §8.2.6 says from the request,
// then come hdrs, the body (hdrs then hold its Content-Type) and the headers
// every response carries (decorate).
type response struct {
	code int
	hdrs []gosip.Header
	body []byte
}

// build makes r as a sipgo response to req (respond decorates it).
func (r response) build(req *gosip.Request) *gosip.Response {
	res := gosip.NewResponseFromRequest(req, r.code, reasonPhrase(r.code), nil)
	res.SipVersion = sipVersion // sipgo copies the request's, which may be another (505)
	for _, h := range r.hdrs {
		res.AppendHeader(h)
	}
	if r.body != nil {
		res.SetBody(r.body)
	}
	return res
}

// direct reports whether r to req is sent by sendDirect: a final response
// on UDP, except a failure to INVITE, which sipgo retransmits until the
// ACK (Timer G) and whose ACK it absorbs.
func direct(req *gosip.Request, r response) bool {
	return r.code >= 200 && !gosip.IsReliable(req.Transport()) && (req.Method != gosip.INVITE || r.code < 300)
}

// send answers req with r. A final response that direct allows is written
// by sendDirect and nil is returned; the others are built, sent through
// the transaction and returned (for retransmission).
func (s *Server) send(tx gosip.ServerTransaction, req *gosip.Request, r response) (*gosip.Response, error) {
	if direct(req, r) {
		if sent, err := s.sendDirect(tx, req, r); sent {
			s.met.response(r.code)
			return nil, err
		}
	}
	res := r.build(req)
	return res, s.respond(tx, res)
}

// sipVersion is the only version we speak, and the one our responses carry.
const sipVersion = "SIP/2.0"

// wireBufs are the buffers responses are written into.
var wireBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// sendDirect writes r to req on the UDP listener itself, byte for byte what
// sipgo would have sent (TestWireLikeSipgo), remembers it in s.answered
// (first, so that a retransmission never finds neither) and ends the server
// transaction: a 2xx to INVITE is retransmitted and its ACK matched by the
// leg (send2xx, takeAck), a retransmitted request is answered by
// answerAgain, and sipgo holds nothing for 64·T1. Building no sipgo
// response saves the copies of the request's headers (~20 allocations a
// response). It reports false, having sent nothing, when r cannot go this
// way.
func (s *Server) sendDirect(tx gosip.ServerTransaction, req *gosip.Request, r response) (bool, error) {
	t := s.transportFor("UDP")
	if t == nil || t.conn == nil {
		return false, nil
	}
	dest, ok := responseDest(req)
	if !ok {
		return false, nil
	}
	k, ok := s.answered.key(req)
	if !ok {
		return false, nil
	}
	buf := wireBufs.Get().(*bytes.Buffer)
	defer wireBufs.Put(buf)
	buf.Reset()
	if !writeResponse(buf, req, r) || buf.Len() > gosip.UDPMTUSize-200 {
		return false, nil // too large: sipgo refuses it the same way (no fallback to TCP)
	}
	s.answered.put(k, buf.Bytes(), dest)
	// Ended before the response leaves: a peer that answers at once (an ACK
	// reusing the INVITE's branch) must find no transaction to be absorbed by.
	tx.Terminate()
	return true, t.writeTo(buf.Bytes(), dest)
}

// responseDest is where a response to a request received on UDP goes, as
// sipgo's transport layer decides it (RFC 3261 §18.2.2, RFC 3581): the
// source address, at the port of the top Via (default 5060), its rport
// value, or with an empty rport the source port.
func responseDest(req *gosip.Request) (netip.AddrPort, bool) {
	src, err := netip.ParseAddrPort(req.Source())
	via := req.Via()
	if err != nil || via == nil {
		return netip.AddrPort{}, false
	}
	port := via.Port
	if port <= 0 {
		port = gosip.DefaultUdpPort
	}
	if rport, ok := via.Params.Get("rport"); ok {
		if rport == "" {
			port = int(src.Port())
		} else if p, err := strconv.Atoi(rport); err == nil {
			port = p
		}
	}
	if port <= 0 || port > 65535 {
		port = gosip.DefaultUdpPort
	}
	return netip.AddrPortFrom(src.Addr().Unmap(), uint16(port)), true
}

// writeResponse writes r to req as sipgo's NewResponseFromRequest, the
// headers, SetBody, decorate and StringWrite would: Record-Route (2xx and
// 18x), Via (the top one with rport and received filled in when it asked
// for rport), From, To, Call-ID, CSeq, Content-Length, hdrs, Server,
// Allow, Supported, the body. False when req lacks what that needs. Not
// for 100 Trying (which copies Timestamp and adds no To-tag): that one
// goes through sipgo's transaction.
func writeResponse(b *bytes.Buffer, req *gosip.Request, r response) bool {
	b.WriteString(sipVersion)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(r.code))
	b.WriteByte(' ')
	b.WriteString(reasonPhrase(r.code))
	b.WriteString("\r\n")
	if req.Method != gosip.REGISTER && !req.IsAck() && (r.code >= 180 && r.code < 190 || r.code >= 200 && r.code < 300) {
		for _, h := range req.Headers() {
			if strings.EqualFold(h.Name(), "Record-Route") {
				writeHeader(b, h)
			}
		}
	}
	top := true
	for _, h := range req.Headers() {
		if !strings.EqualFold(h.Name(), "Via") {
			continue
		}
		if via, ok := h.(*gosip.ViaHeader); ok && top {
			if v, ok := via.Params.Get("rport"); ok && v == "" {
				host, port, err := net.SplitHostPort(req.Source())
				if err != nil {
					return false
				}
				via = via.Clone()
				via.Params.Add("rport", port)
				via.Params.Add("received", host)
			}
			h = via
		}
		top = false
		writeHeader(b, h)
	}
	if from := req.From(); from != nil {
		writeHeader(b, from)
	}
	if to := req.To(); to != nil {
		to.StringWrite(b)
		if !to.Params.Has("tag") { // RFC 3261 §8.2.6.2 (sipgo adds one the same way)
			b.WriteString(";tag=")
			b.WriteString(newTag())
		}
		b.WriteString("\r\n")
	}
	if cid := req.CallID(); cid != nil {
		writeHeader(b, cid)
	}
	if cseq := req.CSeq(); cseq != nil {
		writeHeader(b, cseq)
	}
	b.WriteString("Content-Length: ")
	b.WriteString(strconv.Itoa(len(r.body)))
	b.WriteString("\r\n")
	for _, h := range r.hdrs {
		writeHeader(b, h)
	}
	for _, h := range [...]gosip.Header{serverHdr, allowHdr, supportedHdr} {
		writeHeader(b, h)
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	return true
}

func writeHeader(b *bytes.Buffer, h gosip.Header) {
	h.StringWrite(b)
	b.WriteString("\r\n")
}
