package taskmsg

import "testing"

// Completion and failures rewrite single fields of a stored message; the message does
// not grow with each retry, and every other field stays as it was.
func TestMessageFieldUpdates(t *testing.T) {
	m := Message{Type: "ops:noop", Payload: []byte(`{"a":1}`), ID: "X", Queue: "default",
		Retry: 5, Timeout: 65, Retention: 86400, Headers: map[string]string{"k": "v", "b": "c"}}
	raw := Encode(m)
	got, err := Decode(raw)
	if err != nil || got.Type != m.Type || string(got.Payload) != string(m.Payload) || got.ID != "X" ||
		got.Queue != "default" || got.Retry != 5 || got.Timeout != 65 || got.Retention != 86400 || got.Headers["k"] != "v" || got.Headers["b"] != "c" {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	once := WithFailure(raw, 1, "boom", 1_800_000_000)
	twice := WithFailure(once, 2, "boom", 1_800_000_100)
	if len(twice) != len(once) {
		t.Fatalf("the message grew from %d to %d bytes on the second failure", len(once), len(twice))
	}
	got, err = Decode(twice)
	if err != nil || got.Retried != 2 || got.Type != m.Type || got.Headers["k"] != "v" {
		t.Fatalf("after two failures: %+v, %v", got, err)
	}
	kept := WithFailure(twice, -1, "again", 300)
	if got, _ := Decode(kept); got.Retried != 2 {
		t.Fatalf("a failure that does not count changed the count to %d", got.Retried)
	}
	if _, err := Decode([]byte{0xff, 0xff}); err == nil {
		t.Fatal("garbage decoded")
	}
}
