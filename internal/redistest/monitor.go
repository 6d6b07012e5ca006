package redistest

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Monitor records every command a set of servers runs (Redis's MONITOR on
// each), from every client, including those of child processes and of
// libraries errand does not control (asynq, the dashboard): what a managed
// service would see. It stops when the test ends.
type Monitor struct {
	tb    testing.TB
	conns []net.Conn
	wg    sync.WaitGroup

	mu    sync.Mutex
	lines []string
	nodes []int // the index of the server each line came from
}

// Monitor starts recording the commands of every node of the cluster. Start
// it before the clients it is to watch send anything.
func (n *Nodes) Monitor() *Monitor {
	n.tb.Helper()
	m := &Monitor{tb: n.tb}
	n.tb.Cleanup(m.Stop)
	for _, s := range n.servers {
		conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
		if err != nil {
			n.tb.Fatalf("redistest: monitor %s: %v", s.Addr(), err)
		}
		r := bufio.NewReader(conn)
		if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
			n.tb.Fatalf("redistest: monitor %s: %v", s.Addr(), err)
		}
		if ok, err := r.ReadString('\n'); err != nil || ok != "+OK\r\n" {
			n.tb.Fatalf("redistest: MONITOR on %s: %q, %v", s.Addr(), ok, err)
		}
		m.conns = append(m.conns, conn)
		node := len(m.conns) - 1
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return // Stop closed the connection, or the server is gone
				}
				m.mu.Lock()
				m.lines = append(m.lines, strings.TrimSuffix(strings.TrimPrefix(line, "+"), "\r\n"))
				m.nodes = append(m.nodes, node)
				m.mu.Unlock()
			}
		}()
	}
	return m
}

// Stop ends the recording; what was recorded stays readable.
func (m *Monitor) Stop() {
	for _, c := range m.conns {
		_ = c.Close()
	}
	m.wg.Wait()
}

// Lines are the commands recorded so far, as MONITOR prints them:
// `<time> [<db> <client>] "<command>" "<arg>" …`.
func (m *Monitor) Lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.lines...)
}

// Scripts are the script runs recorded so far (EVAL, EVALSHA, their _RO
// forms, FCALL and FCALL_RO sent by a client, not the commands a script
// runs), and of those the ones that declared no key: a managed Redis that
// runs only in cluster mode (ElastiCache Serverless) refuses those.
func (m *Monitor) Scripts() (all, keyless []string) {
	for _, line := range m.Lines() {
		_, rest, ok := strings.Cut(line, "] ")
		if !ok || strings.Contains(line, " lua] ") {
			continue // a command run by a script
		}
		args, err := parseMonitorArgs(rest)
		if err != nil {
			m.tb.Errorf("redistest: MONITOR line %q: %v", line, err)
			continue
		}
		if len(args) < 3 {
			continue
		}
		switch strings.ToLower(args[0]) {
		case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
			all = append(all, line)
			if args[2] == "0" {
				keyless = append(keyless, line)
			}
		}
	}
	return all, keyless
}

// parseMonitorArgs splits MONITOR's quoted arguments, undoing the escapes
// Redis writes them with (sdscatrepr): \\ \" \n \r \t \a \b and \xHH.
func parseMonitorArgs(s string) ([]string, error) {
	var args []string
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			i++
			continue
		}
		if s[i] != '"' {
			return nil, fmt.Errorf("want a quoted argument at %d", i)
		}
		var b strings.Builder
		i++
		for {
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated argument")
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case 'a':
					b.WriteByte('\a')
				case 'b':
					b.WriteByte('\b')
				case 'x':
					var v byte
					if i+2 >= len(s) {
						return nil, fmt.Errorf("short \\x escape")
					}
					if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &v); err != nil {
						return nil, fmt.Errorf("bad \\x escape: %w", err)
					}
					b.WriteByte(v)
					i += 2
				default:
					b.WriteByte(s[i]) // \\ and \"
				}
				i++
				continue
			}
			b.WriteByte(c)
			i++
		}
		args = append(args, b.String())
	}
	return args, nil
}

// UndeclaredKeys lists each key a script touched that it neither declared
// nor shares a declared key's hash tag with (a key is taken to be any
// argument starting with prefix, e.g. asynq's key prefix). Redis Cluster checks only
// that such keys are in the script's slot; Dragonfly refuses any undeclared
// key, unless told to lock on hash tags (--lock_on_hashtags), when a key
// with a declared key's tag is allowed. A script's commands follow its run
// on the node that ran it, in MONITOR's order, as scripts run atomically.
func (m *Monitor) UndeclaredKeys(prefix string) []string {
	m.mu.Lock()
	lines, nodes := append([]string(nil), m.lines...), append([]int(nil), m.nodes...)
	m.mu.Unlock()
	type script struct {
		line     string
		declared map[string]bool // keys and their hash tags
	}
	current := map[int]*script{} // by node: the script whose commands come next
	var out []string
	for i, line := range lines {
		_, rest, ok := strings.Cut(line, "] ")
		if !ok {
			continue
		}
		args, err := parseMonitorArgs(rest)
		if err != nil || len(args) == 0 {
			continue
		}
		if !strings.Contains(line, " lua] ") {
			current[nodes[i]] = nil
			switch strings.ToLower(args[0]) {
			case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
				n := 0
				if len(args) > 2 {
					n, _ = strconv.Atoi(args[2])
				}
				sc := &script{line: line, declared: map[string]bool{}}
				for _, k := range args[3:min(len(args), 3+n)] {
					sc.declared[k] = true
					if tag, ok := hashTag(k); ok {
						sc.declared["{"+tag+"}"] = true
					}
				}
				current[nodes[i]] = sc
			}
			continue
		}
		sc := current[nodes[i]]
		if sc == nil {
			continue
		}
		for _, a := range args[1:] {
			if !strings.HasPrefix(a, prefix) || sc.declared[a] {
				continue
			}
			if tag, ok := hashTag(a); ok && sc.declared["{"+tag+"}"] {
				continue
			}
			out = append(out, fmt.Sprintf("%s touched %q (run: %.200s)", args[0], a, sc.line))
		}
	}
	return out
}

// hashTag is what lies between a key's first "{" and the next "}", when
// not empty: the part Redis Cluster hashes.
func hashTag(key string) (string, bool) {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return "", false
	}
	n := strings.IndexByte(key[open+1:], '}')
	if n <= 0 {
		return "", false
	}
	return key[open+1 : open+1+n], true
}
