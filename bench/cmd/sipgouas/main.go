// Command sipgouas is the floor of the SIP benchmark: the smallest UAS an
// application developer writes with sipgo (its own UDP transport and
// transaction layer), answering what `sipp -sn uac` sends and nothing
// more: 100 Trying and 200 OK to an INVITE, 200 OK to a BYE. No media, no
// SDP, no session table. bench/peers.sh measures it beside `sipp -sn uas`
// and the gateway, so the gateway's rate can be read against what sipgo
// alone costs on the same machine in the same run.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:5060", "UDP address to answer on")
	flag.Parse()
	slog.SetLogLoggerLevel(slog.LevelError)

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("sipgouas"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var tags atomic.Uint64
	contact := sip.ContactHeader{Address: sip.Uri{Host: "127.0.0.1"}}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 100, "Trying", nil))
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if to := res.To(); to != nil {
			to.Params.Add("tag", strconv.FormatUint(tags.Add(1), 36))
		}
		res.AppendHeader(&contact)
		_ = tx.Respond(res)
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.ListenAndServe(ctx, "udp", *addr); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
