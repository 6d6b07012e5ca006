//go:build !unix

package main

import "errors"

// lowerPriority is not available here; the worker runs at normal priority.
func lowerPriority(int) error {
	return errors.New("not supported on this system")
}
