package redistest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/errandhq/errand/internal/redistest"
)

// KeySlot agrees with the slot a real cluster gives each key, hash tags
// included (the first "{…}" with something inside counts).
func TestKeySlotMatchesRedisCluster(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Cluster())
	c := srv.Client()
	keys := []string{"", "foo", "123456789", "asynq:{default}:pending", "asynq:{default}:t:01J",
		"{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{", "}{x}", "é{ü}", "errand:wake"}
	for _, k := range keys {
		want, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %q: %v", k, err)
		}
		if got := redistest.KeySlot(k); got != int(want) {
			t.Errorf("KeySlot(%q) = %d, Redis says %d", k, got, want)
		}
	}
}

// The cluster-mode server refuses a script over two slots, as a cluster does.
func TestClusterRefusesCrossSlotScripts(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Cluster())
	c := srv.ClusterClient()
	if err := c.Eval(ctx, "return redis.call('SET', KEYS[1], 1)", []string{"{a}x"}).Err(); err != nil {
		t.Fatalf("a script over one key: %v", err)
	}
	err := srv.Client().Eval(ctx, "return 1", []string{"{a}x", "{b}x"}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("a script over two slots: err = %v, want CROSSSLOT", err)
	}
}

// SlotCheck lets through a script whose keys share a slot, and refuses —
// before Redis sees it — one without keys or over two slots, alone or in a
// pipeline.
func TestSlotCheckRefusesWhatAClusterWould(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	// The hook reports to a stand-in for the test, so that this one can look.
	tb := &reportsTo{TB: t}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	c.AddHook(redistest.SlotCheck(tb))

	if err := c.Eval(ctx, "return 1", []string{"asynq:{q}:pending", "asynq:{q}:t:1"}).Err(); err != nil {
		t.Fatalf("keys in one slot: %v", err)
	}
	if err := c.Get(ctx, "plain").Err(); err != redis.Nil {
		t.Fatalf("a plain command: %v", err)
	}
	for name, run := range map[string]func() error{
		"no key":    func() error { return c.Eval(ctx, "return 1", nil).Err() },
		"two slots": func() error { return c.Eval(ctx, "return 1", []string{"asynq:{a}:pending", "asynq:{b}:pending"}).Err() },
		"evalsha":   func() error { return c.EvalSha(ctx, "0000000000000000000000000000000000000000", nil).Err() },
		"pipeline": func() error {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Eval(ctx, "return 1", []string{"{a}"})
				p.Eval(ctx, "return 1", []string{"{a}", "{b}"})
				return nil
			})
			return err
		},
	} {
		if err := run(); err == nil || !strings.Contains(err.Error(), "SlotCheck refused") {
			t.Errorf("%s: err = %v, want refused", name, err)
		}
	}
	for _, f := range tb.cleanups {
		f()
	}
	if len(tb.errors) != 4 {
		t.Fatalf("SlotCheck reported %d failures, want 4: %q", len(tb.errors), tb.errors)
	}
	for _, want := range []string{"declares no key", "CROSSSLOT", "declares no key", "CROSSSLOT"} {
		found := false
		for _, e := range tb.errors {
			found = found || strings.Contains(e, want)
		}
		if !found {
			t.Errorf("no failure says %q: %q", want, tb.errors)
		}
	}
}

// reportsTo keeps what SlotCheck would report to the test.
type reportsTo struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *reportsTo) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *reportsTo) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
