package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// cmdHealthcheck asks a running `errand serve` on this machine whether it is
// ready (GET /readyz) and exits non-zero when it is not: the healthcheck of a
// container whose image has no shell or curl (the Dockerfile's distroless one).
func cmdHealthcheck(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	f := newFlags("healthcheck", "healthcheck [--url URL]", stderr)
	url := f.String("url", "", "the URL to ask (default: /readyz on http.addr, on loopback)")
	if _, err := f.parse(args); err != nil {
		return err
	}
	if *url == "" {
		cfg, err := f.load(environ)
		if err != nil {
			return err
		}
		*url = readyzURL(cfg.HTTP.Addr)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d %s", *url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}

// readyzURL is /readyz on the address serve listens on, reached over
// loopback when it listens on every interface.
func readyzURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/readyz"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}
