// Package mgcp is the gateway side of MGCP 1.0 (RFC 3435): a codec for
// commands and responses (message.go), a transaction layer on one UDP socket
// (transaction.go, server.go), endpoints as data (endpoint.go) and the verbs
// that turn CRCX/MDCX/DLCX into session table calls (verbs.go). Session
// errors become MGCP return codes in one place, codes.go.
//
// Endpoints, under mgcp.domain:
//   - cnf/<id>: conference <id> of the session table (the same conference as
//     SIP conf-<id>); a CRCX creates it if needed; cnf/$ creates one with a
//     numeric ID and returns it in Z:.
//   - rtpbridge/<n> (n in hex, 1..ffff): a two-party relay, the session
//     conference "rtpbridge-<n>" of kind bridge; `$` or `*` in CRCX picks a
//     free one (Z:); a third connection is 540.
//   - `*` in AUEP (lists the endpoints in use), DLCX, EPCF.
//
// A cnf/<id> exists while conference <id> does: every verb but CRCX on one
// that does not is 500 (endpoint unknown); rtpbridge/<n> always exist (an
// idle one answers DLCX with 515, as osmo-mgw does).
//
// Notification requests (RQNT, and R:/S:/X:/D:/Q: embedded in CRCX, MDCX,
// DLCX) are parsed in request.go, checked against the RFC 3660 packages in
// packages.go (DTMF digits and the timer T are detected; other events,
// every signal and unknown packages are refused with the codes listed in
// codes.go), matched against digit maps in digitmap.go and acted on in
// notify.go: digits from the session table's DigitReceived events become
// NTFY with X: and O:, retransmitted with RFC 3435 backoff until answered.
//
// The request pipeline follows osmo-mgw: drop responses (they complete
// gateway commands or acknowledge a final response with 000), look up the
// verb (504), parse the header (510), check the version (528), answer a
// repeated transaction from the response cache (30 s per source and
// transaction ID; a K: acknowledged one gets no answer), resolve the
// endpoint (500), dispatch, remember the response. A command running longer
// than 200 ms gets a provisional 100; its final response then carries an
// empty K: and is repeated until the call agent's 000.
//
// Deliberate differences from osmo-mgw 1.10 (asserted in osmo_test.go):
// unknown verbs are answered 504 (osmo-mgw stays silent), K: and
// piggybacked messages are supported (osmo-mgw answers 539), conference
// endpoints exist and take mode confrnce, a CRCX in mode sendrecv without
// SDP is accepted (the remote is latched from the first RTP packet;
// osmo-mgw answers 527, which we keep for sendonly), and the cache is
// consulted before the endpoint lookup so a repeated DLCX of a released
// conference still gets its original answer. osmo-mgw answers every RQNT
// 200 and acts on none; we refuse what we cannot do (518, 513, 510...).
package mgcp
