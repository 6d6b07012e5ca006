// Package queue is errand's engine over asynq: the client that queues jobs
// (think-queue's push and later), the worker that takes and runs them, the
// scheduler of periodic jobs, and the failure policy — a chain of middlewares
// that decides retries and final failures and hands those to escalation and
// callbacks. The job contract it runs (types, defaults, envelopes, IDs) is
// internal/job; asynq's Redis layout, and every script over it, internal/rdb.
package queue
