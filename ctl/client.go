package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// client calls the API and writes what it got.
type client struct {
	http  *http.Client
	base  string
	token string
	json  bool // -o json
	out   io.Writer
}

func (c *client) request(method, path string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return c.http.Do(req)
}

// get fetches path and decodes its JSON into v; raw is the body as sent.
func (c *client) get(path string, v any) (raw []byte, err error) {
	res, err := c.request(http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, httpError(res, raw)
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, fmt.Errorf("GET %s: %v", path, err)
		}
	}
	return raw, nil
}

func httpError(res *http.Response, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Errorf("%s %s: %s (%s)", res.Request.Method, res.Request.URL.Path, res.Status, e.Error)
	}
	return fmt.Errorf("%s %s: %s", res.Request.Method, res.Request.URL.Path, res.Status)
}

// action runs a Media Control action and returns its answer (ResultCode,
// Branch and result data, all strings).
func (c *client) action(name string, params map[string]string) (map[string]string, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	res, err := c.request(http.MethodPost, "/v1/actions/"+name, body)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var out map[string]string
	if err := json.Unmarshal(raw, &out); err != nil || out["ResultCode"] == "" {
		if res.StatusCode != http.StatusOK {
			return nil, httpError(res, raw)
		}
		return nil, fmt.Errorf("%s: answer without a ResultCode: %.200q", name, raw)
	}
	return out, nil
}

// exitCode is the exit status for an action's ResultCode: 0 for success
// (and the "no error" codes 1-3), the code itself otherwise.
func exitCode(answer map[string]string) int {
	rc, err := strconv.Atoi(answer["ResultCode"])
	if err != nil || rc < 0 {
		return ExitTransport
	}
	if rc <= 3 {
		return ExitOK
	}
	return rc
}

// report prints an action's answer: its JSON with -o json, else one line
// (ResultCode, Branch and any result data) — and returns the exit code.
func (c *client) report(name string, answer map[string]string) (int, error) {
	if c.json {
		return exitCode(answer), c.writeJSON(answer)
	}
	rc := answer["ResultCode"]
	line := fmt.Sprintf("%s: ResultCode %s (%s)", name, rc, resultText(rc))
	for _, k := range sortedKeys(answer) {
		if k == "ResultCode" || k == "Branch" {
			continue
		}
		line += fmt.Sprintf(" %s=%s", k, answer[k])
	}
	_, err := fmt.Fprintln(c.out, line)
	return exitCode(answer), err
}

func (c *client) writeJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// resultText names a Media Control ResultCode for people.
func resultText(rc string) string {
	if s, ok := resultTexts[rc]; ok {
		return s
	}
	return "error"
}

var resultTexts = map[string]string{
	"0": "success", "4": "all sessions in use", "5": "server draining", "6": "internal error",
	"8": "media resource not available", "12": "session inactivity", "13": "command timeout",
	"14": "busy with a prior request", "15": "already exists", "16": "no connection exists",
	"21": "unknown command", "22": "ConnectionId in invalid format", "23": "ConnectionId not registered",
	"24": "conference unknown or not a member", "25": "no operation in progress",
	"26": "insufficient parameters", "27": "invalid parameter value", "30": "file open error",
	"31": "file read or write error", "35": "malformed request",
}
