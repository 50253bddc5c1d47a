package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// The far end of a cascade (the session's cascade.go) is made over the
// holder's own HTTP API: a JoinConference of a new connection whose media
// goes to this node's side of the link, marked with CallId
// "cascade:<this node>" so that the holder can release it when this node
// dies. The requests carry X-Mediagw-Forwarded: the holder answers them
// itself.

func (c *Cluster) httpClient() *http.Client {
	c.httpOnce.Do(func() {
		c.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 4,
		}}
	})
	return c.http
}

// action posts a Media Control action to node owner's API and returns its
// answer (an error unless ResultCode is 0).
func (c *Cluster) action(ctx context.Context, owner, name string, params map[string]string) (map[string]string, error) {
	n, ok := c.Alive(owner)
	if !ok {
		return nil, fmt.Errorf("node %s is not alive", owner)
	}
	body, _ := json.Marshal(params)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(n.Advertise, "/")+"/v1/actions/"+name, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Mediagw-Forwarded", c.self.Name)
	if c.info.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.info.Token)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("node %s: %s answered %s", owner, name, resp.Status)
	}
	if out["ResultCode"] != "0" {
		return out, fmt.Errorf("node %s: %s: ResultCode %s: %s", owner, name, out["ResultCode"], out["ResultText"])
	}
	return out, nil
}

// Cascade asks node owner to make a member of its conference name whose
// media goes to local (PCMU), and returns that member's media address and
// ConnectionId.
func (c *Cluster) Cascade(ctx context.Context, owner, name string, local netip.AddrPort) (netip.AddrPort, string, error) {
	res, err := c.action(ctx, owner, "JoinConference", map[string]string{
		"ConferenceId": name, "MediaTxIP": local.Addr().String(), "MediaTxPort": fmt.Sprint(local.Port()),
		"MediaTxCodec": "PCMU", "CallId": "cascade:" + c.self.Name,
	})
	if err != nil {
		return netip.AddrPort{}, "", err
	}
	ip, err := netip.ParseAddr(res["MediaRxIP"])
	if err != nil {
		return netip.AddrPort{}, "", fmt.Errorf("node %s: cascade member without a media address: %v", owner, res)
	}
	var port uint16
	if _, err := fmt.Sscan(res["MediaRxPort"], &port); err != nil {
		return netip.AddrPort{}, "", fmt.Errorf("node %s: cascade member without a media port: %v", owner, res)
	}
	return netip.AddrPortFrom(ip, port), res["ConnectionId"], nil
}

// Uncascade releases the holder's member of a link, in the background.
func (c *Cluster) Uncascade(owner, remoteID string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := c.action(ctx, owner, "DeleteConnection", map[string]string{"ConnectionId": remoteID}); err != nil {
			c.log.WithError(err).WithField("holder", owner).WithField("conn_id", remoteID).Debug("the far end of a cascade was not released (gone already?)")
		}
	}()
}
