package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
)

// reloadOnHangup calls reload for every SIGHUP until ctx ends: the SIP
// users file is read again (sip.users_file) without dropping a call.
func reloadOnHangup(ctx context.Context, log *logrus.Entry, reload func() (int, error)) {
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
			}
		}
	}()
}
