package sip

import (
	"context"
	"log/slog"

	"github.com/sirupsen/logrus"
)

// slogHandler forwards sipgo's log/slog records to logrus. sipgo's Info
// records describe routine protocol events (retransmissions, unmatched
// responses) that repeat under load, so they are logged at debug level.
type slogHandler struct {
	log   *logrus.Entry
	group string
}

func newSlogLogger(log *logrus.Entry) *slog.Logger {
	return slog.New(&slogHandler{log: log})
}

func (h *slogHandler) level(l slog.Level) logrus.Level {
	switch {
	case l >= slog.LevelError:
		return logrus.ErrorLevel
	case l >= slog.LevelWarn:
		return logrus.WarnLevel
	case l >= slog.LevelInfo:
		return logrus.DebugLevel
	}
	return logrus.TraceLevel
}

func (h *slogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return h.log.Logger.IsLevelEnabled(h.level(l))
}

func (h *slogHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make(logrus.Fields, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		h.add(fields, a)
		return true
	})
	h.log.WithFields(fields).Log(h.level(r.Level), r.Message)
	return nil
}

func (h *slogHandler) add(fields logrus.Fields, a slog.Attr) {
	key := a.Key
	if h.group != "" {
		key = h.group + "." + key
	}
	switch key {
	case "callid", "call-id":
		key = "call_id"
	case "tx":
		key = "trans_id"
	}
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		for _, g := range v.Group() {
			h.add(fields, slog.Attr{Key: a.Key + "." + g.Key, Value: g.Value})
		}
		return
	}
	fields[key] = v.Any()
}

func (h *slogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	fields := make(logrus.Fields, len(attrs))
	for _, a := range attrs {
		h.add(fields, a)
	}
	return &slogHandler{log: h.log.WithFields(fields), group: h.group}
}

func (h *slogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &slogHandler{log: h.log, group: g}
}
