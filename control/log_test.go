package control

import (
	"io"

	"github.com/sirupsen/logrus"
)

func logEntry() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}
