package main

import (
	"context"
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
