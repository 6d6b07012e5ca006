package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Services are the outbound services a [limits.<service>] table may name.
var Services = []string{"smtp", "slack", "telegram", "tidio", "fulfillment", "shopify"}

// Limit caps the calls every worker together makes to one service:
// rate = "10/1m" lets 10 calls a minute through, on average, with up to
// burst at once. An empty rate is no limit.
type Limit struct {
	Rate  string `koanf:"rate"`
	Burst int    `koanf:"burst"` // 0 = 1
}

// Bucket is the limit as a token bucket: one call per per, burst calls at
// most at once; per 0 when there is no limit.
func (l Limit) Bucket() (per time.Duration, burst int, err error) {
	burst = max(l.Burst, 1)
	if strings.TrimSpace(l.Rate) == "" {
		return 0, burst, nil
	}
	n, d, ok := strings.Cut(l.Rate, "/")
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if !ok || err != nil || count < 1 {
		return 0, 0, fmt.Errorf("rate %q must be N/duration with N at least 1, e.g. \"10/1m\"", l.Rate)
	}
	dur, err := time.ParseDuration(strings.TrimSpace(d))
	if err != nil || dur <= 0 {
		return 0, 0, fmt.Errorf("rate %q must be N/duration with a positive duration, e.g. \"10/1m\"", l.Rate)
	}
	return dur / time.Duration(count), burst, nil
}

// validateLimits checks [limits]: only known services, well-formed rates.
func (c *Config) validateLimits(bad func(key, format string, args ...any)) {
	names := make([]string, 0, len(c.Limits))
	for name := range c.Limits {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		l := c.Limits[name]
		known := false
		for _, s := range Services {
			known = known || s == name
		}
		if !known {
			bad("limits."+name, "unknown service; one of %s", strings.Join(Services, ", "))
			continue
		}
		if l.Burst < 0 {
			bad("limits."+name+".burst", "must not be negative (got %d)", l.Burst)
		}
		if _, _, err := l.Bucket(); err != nil {
			bad("limits."+name+".rate", "%v", err)
		} else if per, _, _ := l.Bucket(); l.Rate != "" && per < time.Millisecond {
			bad("limits."+name+".rate", "%q is more than 1000 calls a second", l.Rate)
		}
	}
}
