package job

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"time"
)

// crockford is the base32 alphabet of sortable IDs: no I, L, O or U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// NewID returns a 26-character, time-ordered, random job ID (48 bits of
// milliseconds, 80 random bits): IDs sort by when they were made, so lists of
// jobs read in order, and they never collide in practice.
func NewID(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(t.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	// 128 bits as 26 base32 digits, most significant first.
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// IDTime returns the instant (to the millisecond) an ID made by NewID was
// made; ok is false for an ID of another form.
func IDTime(id string) (time.Time, bool) {
	// 26 base32 digits hold 130 bits and an ID 128: its first digit is < 8.
	if len(id) != 26 || strings.IndexByte(crockford[:8], id[0]) < 0 {
		return time.Time{}, false
	}
	var hi, lo uint64
	for i := 0; i < 26; i++ {
		d := strings.IndexByte(crockford, id[i])
		if d < 0 {
			return time.Time{}, false
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(d)
	}
	return time.UnixMilli(int64(hi >> 16)), true
}
