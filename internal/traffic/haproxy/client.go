package haproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "flotilla.dev/flotilla/api/v1"
)

// MaxWeight is the largest absolute server weight HAProxy accepts.
const MaxWeight = 256

// maxAnswer bounds one answer of the runtime API; `show servers state` of a
// backend with thousands of servers stays far below it.
const maxAnswer = 4 << 20

// ErrUnexpectedAnswer: HAProxy answered a command with something other than
// its success answer, typically an error text such as "No such server.".
var ErrUnexpectedAnswer = errors.New("unexpected answer")

// Client speaks HAProxy's runtime API (the stats socket) in its
// non-interactive mode: one connection per command, the answer read until
// HAProxy closes the connection. It is safe for concurrent use.
type Client struct {
	network, address string
	// Timeout bounds one command when ctx has no earlier deadline.
	Timeout time.Duration
	dialer  net.Dialer
}

// NewClient parses a runtime API address, unix:///path or tcp://host:port.
func NewClient(runtimeAPI string) (*Client, error) {
	u, err := url.Parse(runtimeAPI)
	if err != nil {
		return nil, fmt.Errorf("haproxy runtime API %q: %w", runtimeAPI, err)
	}
	c := &Client{Timeout: 5 * time.Second}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("haproxy runtime API %q: want unix:///absolute/path", runtimeAPI)
		}
		c.network, c.address = "unix", u.Path
	case "tcp":
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return nil, fmt.Errorf("haproxy runtime API %q: want tcp://host:port: %w", runtimeAPI, err)
		}
		c.network, c.address = "tcp", u.Host
	default:
		return nil, fmt.Errorf("haproxy runtime API %q: scheme must be unix or tcp", runtimeAPI)
	}
	return c, nil
}

// String returns the address in the form NewClient takes.
func (c *Client) String() string {
	if c.network == "unix" {
		return "unix://" + c.address
	}
	return "tcp://" + c.address
}

// Exec sends one command and returns HAProxy's whole answer. The command
// must be a single line; callers build it from validated names only.
func (c *Client) Exec(ctx context.Context, command string) (string, error) {
	if strings.ContainsAny(command, "\n\r;") {
		return "", fmt.Errorf("haproxy %s: command %q: must be one line without ';'", c, command)
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	conn, err := c.dialer.DialContext(ctx, c.network, c.address)
	if err != nil {
		return "", fmt.Errorf("haproxy %s: %w", c, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Close the connection when ctx ends so a stuck read returns at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(conn, command+"\n"); err != nil {
		return "", fmt.Errorf("haproxy %s: send %q: %w", c, command, ctxErr(ctx, err))
	}
	data, err := io.ReadAll(io.LimitReader(conn, maxAnswer+1))
	if err != nil {
		return "", fmt.Errorf("haproxy %s: read the answer to %q: %w", c, command, ctxErr(ctx, err))
	}
	if len(data) > maxAnswer {
		return "", fmt.Errorf("haproxy %s: the answer to %q is larger than %d bytes", c, command, maxAnswer)
	}
	return string(data), nil
}

// ctxErr prefers the context's error over the network error it caused. The
// connection's deadline is the context's, and may fire a moment before the
// context's own timer does.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if _, ok := ctx.Deadline(); ok && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

// run executes a command whose only success answer is empty.
func (c *Client) run(ctx context.Context, command string) error {
	out, err := c.Exec(ctx, command)
	if err != nil {
		return err
	}
	if msg := strings.TrimSpace(out); msg != "" {
		return fmt.Errorf("haproxy %s: %q: %w: %s", c, command, ErrUnexpectedAnswer, oneLine(msg))
	}
	return nil
}

// oneLine keeps the first line of a long answer, such as the help text
// HAProxy prints after an unknown command.
func oneLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(first)
}

func checkNames(backend, server string) error {
	if !v1.IsHAProxyName(backend) {
		return fmt.Errorf("haproxy backend %q: not a valid name", backend)
	}
	if !v1.IsHAProxyName(server) {
		return fmt.Errorf("haproxy server %q: not a valid name", server)
	}
	return nil
}

// SetWeight sets a server's absolute weight, 0 to MaxWeight.
func (c *Client) SetWeight(ctx context.Context, backend, server string, weight int) error {
	if err := checkNames(backend, server); err != nil {
		return err
	}
	if weight < 0 || weight > MaxWeight {
		return fmt.Errorf("haproxy server %s/%s: weight %d out of range 0-%d", backend, server, weight, MaxWeight)
	}
	return c.run(ctx, fmt.Sprintf("set server %s/%s weight %d", backend, server, weight))
}

// State is a server's administrative state as `set server ... state` takes it.
type State string

// Administrative states.
const (
	// StateReady takes new traffic.
	StateReady State = "ready"
	// StateDrain finishes the requests and connections it has (and
	// persistent sessions) but gets no new traffic.
	StateDrain State = "drain"
	// StateMaint gets no traffic at all; existing connections stay.
	StateMaint State = "maint"
)

// SetState changes a server's administrative state.
func (c *Client) SetState(ctx context.Context, backend, server string, state State) error {
	if err := checkNames(backend, server); err != nil {
		return err
	}
	switch state {
	case StateReady, StateDrain, StateMaint:
	default:
		return fmt.Errorf("haproxy server %s/%s: unknown state %q", backend, server, state)
	}
	return c.run(ctx, fmt.Sprintf("set server %s/%s state %s", backend, server, state))
}

// Admin state bits of `show servers state` (srv_admin_state).
const (
	adminForcedMaint    = 0x01
	adminInheritedMaint = 0x02
	adminConfigMaint    = 0x04
	adminForcedDrain    = 0x08
	adminInheritedDrain = 0x10
	adminResolverMaint  = 0x20
	adminHostnameMaint  = 0x40
)

// ServerState is one server of `show servers state`.
type ServerState struct {
	Backend string
	Name    string
	Address string
	// OpState is srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping.
	OpState int
	// AdminState is the srv_admin_state bit field.
	AdminState int
	// Weight is the user weight (srv_uweight), InitialWeight the configured
	// one (srv_iweight).
	Weight        int
	InitialWeight int
}

// Draining reports whether the server is in drain mode (and so gets no new
// traffic whatever its weight).
func (s ServerState) Draining() bool { return s.AdminState&(adminForcedDrain|adminInheritedDrain) != 0 }

// Maintenance reports whether the server is in maintenance, for any reason.
func (s ServerState) Maintenance() bool {
	return s.AdminState&(adminForcedMaint|adminInheritedMaint|adminConfigMaint|adminResolverMaint|adminHostnameMaint) != 0
}

// Effective is the share-relevant weight: 0 when draining or in
// maintenance, else Weight.
func (s ServerState) Effective() int {
	if s.Draining() || s.Maintenance() {
		return 0
	}
	return s.Weight
}

// ServersState returns the state of every server of backend.
func (c *Client) ServersState(ctx context.Context, backend string) ([]ServerState, error) {
	if !v1.IsHAProxyName(backend) {
		return nil, fmt.Errorf("haproxy backend %q: not a valid name", backend)
	}
	cmd := "show servers state " + backend
	out, err := c.Exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	states, err := ParseServersState(out)
	if err != nil {
		return nil, fmt.Errorf("haproxy %s: %q: %w", c, cmd, err)
	}
	return states, nil
}

// ParseServersState parses the answer to `show servers state`: a format
// version line ("1"), a "# " header naming the columns, then one line per
// server. Columns are found by name so added columns do no harm.
func ParseServersState(out string) ([]ServerState, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "1" || !strings.HasPrefix(lines[1], "# ") {
		return nil, fmt.Errorf("%w: %s", ErrUnexpectedAnswer, oneLine(strings.TrimSpace(out)))
	}
	header := strings.Fields(strings.TrimPrefix(lines[1], "# "))
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, need := range []string{"be_name", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_uweight", "srv_iweight"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%w: no column %s in %q", ErrUnexpectedAnswer, need, lines[1])
		}
	}
	var states []ServerState
	for n, line := range lines[2:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < len(header) {
			return nil, fmt.Errorf("%w: line %d has %d fields, the header %d", ErrUnexpectedAnswer, n+3, len(f), len(header))
		}
		s := ServerState{Backend: f[col["be_name"]], Name: f[col["srv_name"]], Address: f[col["srv_addr"]]}
		for _, x := range []struct {
			name string
			dst  *int
		}{{"srv_op_state", &s.OpState}, {"srv_admin_state", &s.AdminState}, {"srv_uweight", &s.Weight}, {"srv_iweight", &s.InitialWeight}} {
			v, err := strconv.Atoi(f[col[x.name]])
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %s %q is not a number", ErrUnexpectedAnswer, n+3, x.name, f[col[x.name]])
			}
			*x.dst = v
		}
		states = append(states, s)
	}
	return states, nil
}
