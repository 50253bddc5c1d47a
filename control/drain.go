package control

import (
	"encoding/json"
	"io"
	"net/http"
)

// handleDrain is POST /v1/drain {"Drain": true|false}: stop or resume
// taking new connections (session.Table.Drain); calls in progress go on.
// While draining, /healthz answers 503 and SIP OPTIONS 503, so a load
// balancer or Kamailio's dispatcher probing either moves traffic away.
func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Drain *bool `json:"Drain"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err == nil && len(body) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be {\"Drain\": true|false}"})
		return
	}
	on := true // an empty body drains
	if req.Drain != nil {
		on = *req.Drain
	}
	draining := s.table.Drain(on)
	s.log.WithField("remote", r.RemoteAddr).WithField("drain", on).Info("drain requested over HTTP")
	writeJSON(w, http.StatusOK, map[string]bool{"Draining": draining})
}
