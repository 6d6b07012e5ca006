// Package errand holds the words the rest of the program shares: the classes of
// errors a job can fail with. Which class an error carries decides whether the job
// is retried, whether the attempt counts, and when a failure is final.
package errand

import (
	"errors"
	"fmt"
	"time"
)

// Class says what a failure means for the job that returned it.
type Class int

const (
	// Transient failures (network errors, timeouts, HTTP 5xx, SMTP 4xx) are retried
	// after the job's backoff and use one attempt.
	Transient Class = iota
	// Throttled failures (HTTP 429, Shopify THROTTLED, Telegram retry_after) are
	// retried after the wait the service asked for and do not use an attempt.
	Throttled
	// Permanent failures (HTTP 400/401/403/404/422, SMTP 5xx, a payload that does
	// not decode) are never retried: the failure is final at once.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Throttled:
		return "throttled"
	case Permanent:
		return "permanent"
	default:
		return "transient"
	}
}

// ClassError is an error with a class and, for throttled errors, the wait the
// service asked for.
type ClassError struct {
	Class Class
	Wait  time.Duration
	Err   error
}

func (e *ClassError) Error() string { return e.Err.Error() }
func (e *ClassError) Unwrap() error { return e.Err }

// PermanentError marks err as permanent: the job is not retried.
func PermanentError(err error) error {
	if err == nil {
		return nil
	}
	return &ClassError{Class: Permanent, Err: err}
}

// ThrottledError marks err as throttled: the job is retried after wait and the
// attempt is not counted.
func ThrottledError(err error, wait time.Duration) error {
	if err == nil {
		return nil
	}
	return &ClassError{Class: Throttled, Wait: wait, Err: err}
}

// TransientError marks err as transient explicitly; unmarked errors are
// transient too.
func TransientError(err error) error {
	if err == nil {
		return nil
	}
	return &ClassError{Class: Transient, Err: err}
}

// Permanentf is fmt.Errorf for a permanent error.
func Permanentf(format string, args ...any) error {
	return PermanentError(fmt.Errorf(format, args...))
}

// ClassOf returns the class of err and, when throttled, the wait. An error
// without a class is transient: when in doubt, try again.
func ClassOf(err error) (Class, time.Duration) {
	var ce *ClassError
	if errors.As(err, &ce) {
		return ce.Class, ce.Wait
	}
	return Transient, 0
}
