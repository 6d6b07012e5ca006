package redistest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/errandhq/errand/internal/redistest"
)

// A cluster of three masters splits the slots, so keys land on different
// nodes, a client follows them there, and a node refuses what it does not
// serve: the conditions a one-node cluster cannot create.
func TestStartClusterSpreadsKeysOverThreeMasters(t *testing.T) {
	ctx := context.Background()
	n := redistest.StartCluster(t, 3)
	if len(n.Addrs()) != 3 {
		t.Fatalf("Addrs() = %v, want 3", n.Addrs())
	}
	c := n.Client()

	var keys []string
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	for _, k := range keys {
		if err := c.Set(ctx, k, "v-"+k, 0).Err(); err != nil {
			t.Fatalf("SET %s through the cluster client: %v", k, err)
		}
	}
	spread := n.Spread(keys...)
	if len(spread) != 3 {
		t.Fatalf("30 keys on %d nodes, want all 3: %v", len(spread), spread)
	}
	// Each key is where NodeOf says, and only there: a plain client to
	// another node is sent away with MOVED.
	for _, s := range n.Servers() {
		for _, k := range keys {
			got, err := s.Client().Get(ctx, k).Result()
			if n.NodeOf(k) == s.Addr() {
				if err != nil || got != "v-"+k {
					t.Errorf("GET %s on its node %s = %q, %v", k, s.Addr(), got, err)
				}
			} else if err == nil || !strings.HasPrefix(err.Error(), "MOVED ") {
				t.Errorf("GET %s on %s, which does not serve it: %q, %v; want MOVED", k, s.Addr(), got, err)
			}
		}
	}

	// A script must declare its keys: one that reaches a key another node
	// serves is refused, as is one whose keys are in two slots.
	var here, there string
	for _, k := range keys[1:] {
		if n.NodeOf(k) != n.NodeOf(keys[0]) {
			here, there = keys[0], k
			break
		}
	}
	err := c.Eval(ctx, "return redis.call('GET', ARGV[1])", []string{here}, there).Err()
	if err == nil || !strings.Contains(err.Error(), "non local key") {
		t.Errorf("a script reaching an undeclared key on another node: %v, want a non local key error", err)
	}
	err = c.Eval(ctx, "return 1", []string{here, there}).Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("a script declaring keys of two slots: %v, want CROSSSLOT", err)
	}
}

// Monitor sees every script a client runs on any node, and tells those
// that declare no key from those that do, whatever their source holds.
func TestMonitorFindsScriptsWithoutKeys(t *testing.T) {
	ctx := context.Background()
	n := redistest.StartCluster(t, 3)
	m := n.Monitor()
	c := n.Client()
	if err := c.Eval(ctx, "return redis.call('SET', KEYS[1], \"a \\\"quoted\\\"\\nvalue\")", []string{"k1"}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Eval(ctx, "return 'no key'", nil).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, "plain", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var all, keyless []string
	for deadline := time.Now().Add(5 * time.Second); len(all) < 2 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		all, keyless = m.Scripts()
	}
	if len(all) != 2 || len(keyless) != 1 || !strings.Contains(keyless[0], "no key") {
		t.Fatalf("scripts %q, keyless %q: want 2 and the one without keys", all, keyless)
	}
}

// UndeclaredKeys names a key a script reached without declaring it or its
// hash tag, and accepts one that shares a declared key's tag.
func TestMonitorFindsUndeclaredKeys(t *testing.T) {
	ctx := context.Background()
	n := redistest.StartCluster(t, 3)
	m := n.Monitor()
	c := n.Client()
	touch := "redis.call('SET', KEYS[1], 1); return redis.call('SET', ARGV[1], 1)"
	if err := c.Eval(ctx, touch, []string{"q:{a}:one"}, "q:{a}:two").Err(); err != nil {
		t.Fatalf("same tag: %v", err)
	}
	// A tag of another name in the same slot: Redis Cluster runs it.
	other := ""
	for i := 0; other == ""; i++ {
		if tag := fmt.Sprintf("t%d", i); redistest.KeySlot("{"+tag+"}") == redistest.KeySlot("{a}") {
			other = "q:{" + tag + "}:two"
		}
	}
	if err := c.Eval(ctx, touch, []string{"q:{a}:one"}, other).Err(); err != nil {
		t.Fatalf("a key of another tag in the same slot: %v", err)
	}
	if err := c.Eval(ctx, touch, []string{"q:{b}:one"}, "q:{b}:two").Err(); err != nil {
		t.Fatalf("same tag: %v", err)
	}
	var undeclared []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if all, _ := m.Scripts(); len(all) == 3 {
			undeclared = m.UndeclaredKeys("q:")
			break
		}
	}
	if len(undeclared) != 1 || !strings.Contains(undeclared[0], `"`+other+`"`) {
		t.Fatalf("undeclared keys %q, want only %s", undeclared, other)
	}
}
