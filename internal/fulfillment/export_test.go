package fulfillment

import "time"

// SetClock makes c sign requests as if it were now() — a client whose clock
// is off.
func (c *Client) SetClock(now func() time.Time) { c.now = now }
