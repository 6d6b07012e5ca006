package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// KeySlot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its hash
// tag — what lies between the first "{" and the next "}", if not empty — or
// of the whole key, modulo 16384. go-redis keeps its own copy unexported.
func KeySlot(key string) int {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if n := strings.IndexByte(key[open+1:], '}'); n > 0 {
			key = key[open+1 : open+1+n]
		}
	}
	return int(crc16(key) % 16384)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum
// Redis Cluster hashes keys with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// SlotCheck returns a go-redis hook that refuses, and fails tb for, every
// script run (EVAL, EVALSHA, their _RO forms, FCALL) that declares no key or
// keys in two hash slots: what Redis Cluster refuses (CROSSSLOT, or a script
// routed to a node at random), and what managed services that run only in
// cluster mode refuse outright. A refused command answers an error, as the
// cluster would, so the code that sent it fails too; the failures are
// reported when the test ends. Add it to the clients a test builds:
//
//	c.AddHook(redistest.SlotCheck(t))
func SlotCheck(tb testing.TB) redis.Hook {
	h := &slotCheck{}
	tb.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, v := range h.violations {
			tb.Errorf("redistest.SlotCheck: %s", v)
		}
	})
	return h
}

type slotCheck struct {
	mu         sync.Mutex
	violations []string
}

func (h *slotCheck) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slotCheck) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.check(cmd); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h *slotCheck) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var first error
		for _, cmd := range cmds {
			if err := h.check(cmd); err != nil {
				cmd.SetErr(err)
				if first == nil {
					first = err
				}
			}
		}
		if first != nil {
			return first
		}
		return next(ctx, cmds)
	}
}

// check returns an error for a script run that a cluster would refuse.
func (h *slotCheck) check(cmd redis.Cmder) error {
	args := cmd.Args()
	name := strings.ToLower(fmt.Sprint(args[0]))
	switch name {
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
	default:
		return nil
	}
	if len(args) < 3 {
		return h.refuse(cmd, "no key count")
	}
	n, err := strconv.Atoi(fmt.Sprint(args[2]))
	if err != nil || n < 0 || 3+n > len(args) {
		return h.refuse(cmd, "bad key count")
	}
	if n == 0 {
		return h.refuse(cmd, "declares no key: a cluster routes it to any node, and cluster-only services refuse it")
	}
	slot := KeySlot(fmt.Sprint(args[3]))
	for _, k := range args[4 : 3+n] {
		if s := KeySlot(fmt.Sprint(k)); s != slot {
			return h.refuse(cmd, fmt.Sprintf("CROSSSLOT: key %q is in slot %d, key %q in slot %d", fmt.Sprint(args[3]), slot, fmt.Sprint(k), s))
		}
	}
	return nil
}

func (h *slotCheck) refuse(cmd redis.Cmder, why string) error {
	what := fmt.Sprint(cmd.Args()[0])
	if len(cmd.Args()) > 1 {
		what += " " + fmt.Sprint(cmd.Args()[1])
	}
	if len(what) > 80 {
		what = what[:80] + "…"
	}
	v := fmt.Sprintf("%s: %s", what, why)
	h.mu.Lock()
	h.violations = append(h.violations, v)
	h.mu.Unlock()
	return fmt.Errorf("redistest.SlotCheck refused %s", v)
}
