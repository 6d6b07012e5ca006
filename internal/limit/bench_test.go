package limit_test

import (
	"context"
	"testing"

	"github.com/errandhq/errand/internal/config"
	"github.com/errandhq/errand/internal/limit"
	"github.com/errandhq/errand/internal/redistest"
)

// BenchmarkGateWait is what asking the gate costs a call of a service whose
// [limits] are never reached, on a real Redis over loopback, one caller and
// many at once.
func BenchmarkGateWait(b *testing.B) {
	rs := redistest.Start(b)
	g, err := limit.New(rs.Client(), map[string]config.Limit{"slack": {Rate: "1000/1s", Burst: 1_000_000_000}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, service := range []string{"slack", "tidio"} { // with a rate, and without
		b.Run(service, func(b *testing.B) {
			for b.Loop() {
				if err := g.Wait(ctx, service); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(service+"/parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := g.Wait(ctx, service); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
