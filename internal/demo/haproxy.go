package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// usersPerSecond is the demo's steady user load through HAProxy.
const usersPerSecond = 100

// lookHAProxy finds the haproxy program (Debian installs it in /usr/sbin).
func lookHAProxy() (string, error) {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy", nil
	}
	return "", errors.New("demo: HAProxy is needed to move user traffic between clusters and is not installed: " +
		"apt-get install -y haproxy (make demo installs it)")
}

func (d *demo) haproxySocket() string { return filepath.Join(d.opts.Dir, "haproxy", "admin.sock") }

// startHAProxy runs HAProxy with one frontend and the backend "web", one server per cluster
// (named like the cluster, as each Cluster's spec.traffic says), at equal weights. Rollouts move
// the weights through its runtime API socket.
func (d *demo) startHAProxy(ctx context.Context, bin string, backends map[string]string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	front := ln.Addr().String()
	_ = ln.Close()
	var b strings.Builder
	fmt.Fprintf(&b, `global
  stats socket %s mode 600 level admin
  stats timeout 30s
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-request 10s

frontend shop
  bind %s
  default_backend web

backend web
  balance roundrobin
`, d.haproxySocket(), front)
	names := make([]string, 0, len(backends))
	for n := range backends {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  server %s %s weight 100\n", n, backends[n])
	}
	conf := filepath.Join(d.opts.Dir, "haproxy", "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		return err
	}
	p, err := startProc("haproxy", filepath.Join(d.opts.Dir, "logs", "haproxy.log"), bin, "-db", "-f", conf)
	if err != nil {
		return err
	}
	d.procs = append(d.procs, p)
	d.edge = "http://" + front + "/"
	return waitFor(ctx, 20*time.Second, "HAProxy", p, func() error {
		if _, err := os.Stat(d.haproxySocket()); err != nil {
			return err
		}
		resp, err := http.Get(d.edge)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}
