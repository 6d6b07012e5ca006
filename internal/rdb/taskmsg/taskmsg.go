// Package taskmsg reads and writes the task message asynq stores in a task
// hash (field msg): the protobuf TaskMessage of asynq v0.26.0, the release
// internal/rdb names. It knows no keys and runs no scripts; internal/rdb reads
// the bytes from Redis and writes them back through it.
package taskmsg

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// Message is the part of asynq's stored task message (a protobuf, field msg
// of the task hash, see rdb.TaskKey) that errand reads and writes. The field
// numbers are asynq v0.26.0's wire format (TaskMessage in its
// internal/proto/asynq.proto); encoding it here spares errand a generated
// copy of a proto file asynq keeps private.
type Message struct {
	Type      string
	Payload   []byte
	Headers   map[string]string
	ID        string
	Queue     string
	Retry     int // asynq's limit on retries; errand sets it out of reach
	Retried   int // failed attempts that counted
	UniqueKey string
	Timeout   int64 // seconds
	Retention int64 // seconds
}

const (
	fieldType        = 1
	fieldPayload     = 2
	fieldID          = 3
	fieldQueue       = 4
	fieldRetry       = 5
	fieldRetried     = 6
	fieldErrorMsg    = 7
	fieldTimeout     = 8
	fieldUniqueKey   = 10
	fieldLastFailed  = 11
	fieldRetention   = 12
	fieldCompletedAt = 13
	fieldHeaders     = 15
)

var errBadMessage = errors.New("task message: malformed")

// Decode reads a stored task message. Fields it does not use are
// skipped; a field given twice keeps its last value, as protobuf decoders do.
func Decode(b []byte) (Message, error) {
	var m Message
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return m, errBadMessage
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return m, errBadMessage
			}
			b = b[n:]
			switch num {
			case fieldRetry:
				m.Retry = int(int32(v))
			case fieldRetried:
				m.Retried = int(int32(v))
			case fieldRetention:
				m.Retention = int64(v)
			case fieldTimeout:
				m.Timeout = int64(v)
			}
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return m, errBadMessage
			}
			b = b[n:]
			switch num {
			case fieldType:
				m.Type = string(v)
			case fieldPayload:
				m.Payload = append([]byte(nil), v...)
			case fieldID:
				m.ID = string(v)
			case fieldQueue:
				m.Queue = string(v)
			case fieldUniqueKey:
				m.UniqueKey = string(v)
			case fieldHeaders:
				k, val, err := decodeMapEntry(v)
				if err != nil {
					return m, err
				}
				if m.Headers == nil {
					m.Headers = map[string]string{}
				}
				m.Headers[k] = val
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return m, errBadMessage
			}
			b = b[n:]
		}
	}
	if m.Type == "" || m.ID == "" {
		return m, fmt.Errorf("%w: no type or id", errBadMessage)
	}
	return m, nil
}

// Encode writes a task message as asynq stores it (zero fields left
// out, as protobuf does).
func Encode(m Message) []byte {
	b := make([]byte, 0, 64+len(m.Type)+len(m.Payload)+len(m.ID)+len(m.Queue)+32*len(m.Headers))
	str := func(num protowire.Number, v string) {
		if v != "" {
			b = protowire.AppendTag(b, num, protowire.BytesType)
			b = protowire.AppendString(b, v)
		}
	}
	num := func(n protowire.Number, v int64) {
		if v != 0 {
			b = protowire.AppendTag(b, n, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(v))
		}
	}
	str(fieldType, m.Type)
	if len(m.Payload) > 0 {
		b = protowire.AppendTag(b, fieldPayload, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Payload)
	}
	str(fieldID, m.ID)
	str(fieldQueue, m.Queue)
	num(fieldRetry, int64(m.Retry))
	num(fieldRetried, int64(m.Retried))
	num(fieldTimeout, m.Timeout)
	str(fieldUniqueKey, m.UniqueKey)
	num(fieldRetention, m.Retention)
	for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, m.Headers[k])
		b = protowire.AppendTag(b, fieldHeaders, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	return b
}

func decodeMapEntry(b []byte) (key, val string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return "", "", errBadMessage
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return "", "", errBadMessage
		}
		b = b[n:]
		switch num {
		case 1:
			key = string(v)
		case 2:
			val = string(v)
		}
	}
	return key, val, nil
}

// The updates errand writes back when a job completes or fails replace single
// fields in the stored bytes: the other fields, including any this code does
// not know, are kept as they are.

// WithCompleted records when the job completed.
func WithCompleted(msg []byte, at int64) []byte {
	out := withoutFields(msg, fieldCompletedAt)
	out = protowire.AppendTag(out, fieldCompletedAt, protowire.VarintType)
	return protowire.AppendVarint(out, uint64(at))
}

// WithFailure records a failed attempt; retried < 0 leaves the count as is.
func WithFailure(msg []byte, retried int, errMsg string, at int64) []byte {
	drop := []protowire.Number{fieldErrorMsg, fieldLastFailed}
	if retried >= 0 {
		drop = append(drop, fieldRetried)
	}
	out := withoutFields(msg, drop...)
	if retried >= 0 {
		out = protowire.AppendTag(out, fieldRetried, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(retried))
	}
	out = protowire.AppendTag(out, fieldErrorMsg, protowire.BytesType)
	out = protowire.AppendString(out, errMsg)
	out = protowire.AppendTag(out, fieldLastFailed, protowire.VarintType)
	return protowire.AppendVarint(out, uint64(at))
}

// withoutFields copies msg without the given fields. msg was decoded before,
// so it is well formed; a malformed tail is kept as it is.
func withoutFields(msg []byte, nums ...protowire.Number) []byte {
	out := make([]byte, 0, len(msg)+64)
	b := msg
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return append(out, b...)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return append(out, b...)
		}
		if !slices.Contains(nums, num) {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return out
}
