package sip

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"

	"github.com/sirupsen/logrus"
)

// TLSConfig is sip.tls: the certificate (chain) and key the tls://
// listeners present, PEM files read at start and again on SIGHUP.
type TLSConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// hasTLSListener reports whether sip.listen names a tls:// listener.
func (c Config) hasTLSListener() bool {
	for _, l := range c.Listen {
		if strings.HasPrefix(l, "tls://") {
			return true
		}
	}
	return false
}

func (c Config) validateTLS() error {
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fmt.Errorf("sip.tls: cert and key go together")
	}
	if c.hasTLSListener() && c.TLS.Cert == "" {
		return fmt.Errorf("sip.tls: cert and key are required by a tls:// listener")
	}
	if c.TLS.Cert != "" {
		if _, err := tls.LoadX509KeyPair(c.TLS.Cert, c.TLS.Key); err != nil {
			return fmt.Errorf("sip.tls: %v", err)
		}
	}
	return nil
}

// loadCert reads sip.tls and makes it the certificate new TLS connections
// get; on error the one in use stays.
func (s *Server) loadCert() error {
	cert, err := tls.LoadX509KeyPair(s.cfg.TLS.Cert, s.cfg.TLS.Key)
	if err != nil {
		return fmt.Errorf("sip.tls: %w", err)
	}
	s.cert.Store(&cert)
	return nil
}

// ReloadTLS reads sip.tls's files again (SIGHUP): connections made from
// now on present the new certificate; established ones keep theirs. A bad
// pair keeps the old certificate and is reported. No-op (false) without
// sip.tls.
func (s *Server) ReloadTLS() (bool, error) {
	if s.cfg.TLS.Cert == "" {
		return false, nil
	}
	return true, s.loadCert()
}

// ServeTLS serves SIP over TLS on ln (a plain TCP listener: the TLS layer,
// sip.tcp's bounds and the idle timeout are applied here) until ctx ends.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener) error {
	if s.cert.Load() == nil {
		if err := s.loadCert(); err != nil {
			return err
		}
	}
	t, err := s.newTransport("TLS", ln.Addr())
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tls = t
	s.mu.Unlock()
	s.hangUpLost("TLS")
	limited := newLimitListener(ln, s.cfg.TCP, func(src string) {
		s.reject(RefusedTCPLimit, src, func() *logrus.Entry { return s.log.WithField("transport", "TLS") },
			"TLS connection over sip.tcp's bounds closed")
	})
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cert.Load(), nil
		},
	}
	s.log.WithField("listen", ln.Addr().String()).Info("SIP listening on TLS")
	return s.serve(ctx, ln, func() error { return s.srv.ServeTLS(tls.NewListener(limited, conf)) })
}
