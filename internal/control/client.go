package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/govbmc/govbmc/bmc"
)

// ErrNoDaemon means nothing answers on the control socket.
var ErrNoDaemon = errors.New("vbmcd is not running")

// clientTimeout bounds one API call (an add checks libvirt, start binds).
const clientTimeout = 60 * time.Second

// Client talks to vbmcd over its control socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{socket: path, http: &http.Client{Transport: tr, Timeout: clientTimeout}}
}

// APIError is a refusal from the daemon. It unwraps to the manager's typed
// error its code stands for (bmc.ErrNotFound, *bmc.PortInUseError…), so
// that callers test it with errors.Is and errors.As.
type APIError struct {
	// Status is the HTTP status.
	Status int
	// Code is the machine-readable kind of refusal.
	Code ErrorCode
	// Message is the daemon's message.
	Message string
	typed   error
}

// Error is the daemon's message.
func (e *APIError) Error() string { return e.Message }

// Unwrap returns the typed error the code stands for, or nil.
func (e *APIError) Unwrap() error { return e.typed }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://vbmcd"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w (no server on %s)", ErrNoDaemon, c.socket)
		}
		return fmt.Errorf("vbmcd at %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("vbmcd at %s: %w", c.socket, err)
	}
	if resp.StatusCode >= 300 {
		var e errorResponse
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("vbmcd answered %s", resp.Status)
		}
		return &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Error, typed: decodeError(e)}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("vbmcd answer: %w", err)
		}
	}
	return nil
}

// Version returns the daemon's version.
func (c *Client) Version(ctx context.Context) (string, error) {
	var v VersionResponse
	err := c.do(ctx, http.MethodGet, "/v1/version", nil, &v)
	return v.Version, err
}

// List returns every BMC.
func (c *Client) List(ctx context.Context) ([]NodeInfo, error) {
	var out []NodeInfo
	err := c.do(ctx, http.MethodGet, "/v1/nodes", nil, &out)
	return out, err
}

// Show returns one BMC.
func (c *Client) Show(ctx context.Context, name string) (NodeInfo, error) {
	var out NodeInfo
	err := c.do(ctx, http.MethodGet, "/v1/nodes/"+url.PathEscape(name), nil, &out)
	return out, err
}

// Add registers a BMC.
func (c *Client) Add(ctx context.Context, n bmc.Node) (NodeInfo, error) {
	var out NodeInfo
	err := c.do(ctx, http.MethodPost, "/v1/nodes", AddRequest{Node: n}, &out)
	return out, err
}

// Delete removes a BMC.
func (c *Client) Delete(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/nodes/"+url.PathEscape(name), nil, nil)
}

// Start starts a BMC.
func (c *Client) Start(ctx context.Context, name string) (NodeInfo, error) {
	var out NodeInfo
	err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(name)+"/start", nil, &out)
	return out, err
}

// Stop stops a BMC.
func (c *Client) Stop(ctx context.Context, name string) (NodeInfo, error) {
	var out NodeInfo
	err := c.do(ctx, http.MethodPost, "/v1/nodes/"+url.PathEscape(name)+"/stop", nil, &out)
	return out, err
}

// Domains names the machines backend settings reach (for libvirt, the
// domains of a hypervisor). Any password travels in the body.
func (c *Client) Domains(ctx context.Context, b bmc.Backend) ([]string, error) {
	var out DomainsResponse
	err := c.do(ctx, http.MethodPost, "/v1/domains", DomainsRequest{Backend: b}, &out)
	return out.Domains, err
}
