package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// hoistConfig moves a --config given before the command (errand --config
// prod.toml queues) to after it, where every command's flags read it: README
// says every command takes --config, so it works anywhere on the line.
func hoistConfig(args []string) []string {
	var config []string
	for len(args) > 0 {
		a := args[0]
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			break
		}
		if hasValue {
			config, args = append(config, a), args[1:]
			continue
		}
		if len(args) < 2 {
			break // the command's flags say the value is missing
		}
		config, args = append(config, a, args[1]), args[2:]
	}
	switch {
	case len(config) == 0:
		return args
	case len(args) == 0:
		return nil // --config and no command: the usage says what to add
	}
	return append(append([]string{args[0]}, config...), args[1:]...)
}

// missing prints what the command line lacks, then the usage, as the flag
// package does for a bad flag.
func (f *flags) missing(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(f.stderr, "errand: %s\n\n", msg)
	f.Usage()
	return usageError{errors.New(msg)}
}

// wholeNumber is an integer flag whose error says what it takes: the flag
// package's own says only "parse error".
type wholeNumber[T int | int64] struct{ p *T }

func (w wholeNumber[T]) String() string {
	if w.p == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*w.p), 10)
}

func (w wholeNumber[T]) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || int64(T(n)) != n {
		return errors.New("must be a whole number, e.g. 10")
	}
	*w.p = T(n)
	return nil
}

// Int64 defines an integer flag whose error names the flag, the value and
// what it takes (the flag package's says "parse error").
func (f *flags) Int64(name string, value int64, usage string) *int64 {
	p := &value
	f.Var(wholeNumber[int64]{p}, name, usage)
	return p
}

// Int is Int64 for an int.
func (f *flags) Int(name string, value int, usage string) *int {
	p := &value
	f.Var(wholeNumber[int]{p}, name, usage)
	return p
}
