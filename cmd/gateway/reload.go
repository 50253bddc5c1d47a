package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
)

// reloadOnHangup calls reload for every SIGHUP until ctx ends: the SIP
// users file (sip.users_file) and the SIP TLS certificate (sip.tls) are
// read again without dropping a call or a connection.
func reloadOnHangup(ctx context.Context, log *logrus.Entry, reload func() (int, error), reloadCert func() (bool, error)) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if n, err := reload(); err != nil {
					log.WithError(err).Error("SIGHUP: users file not reloaded; the old users stay")
				} else {
					log.WithField("users", n).Info("SIGHUP: users file reloaded")
				}
				if did, err := reloadCert(); err != nil {
					log.WithError(err).Error("SIGHUP: TLS certificate not reloaded; the old one stays")
				} else if did {
					log.Info("SIGHUP: TLS certificate reloaded")
				}
			}
		}
	}()
}

// errReleaseCalls is the cause of a stop asked for with SIGUSR1: every call
// is released (BYE, DLCX) even when a state store would keep them.
var errReleaseCalls = errors.New("stop releasing every call")

// releaseOnSignal returns a context cancelled with errReleaseCalls when sig
// arrives, and cancelled (plainly) when parent is.
func releaseOnSignal(parent context.Context, sig os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sig)
	go func() {
		select {
		case <-ch:
			cancel(errReleaseCalls)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}
