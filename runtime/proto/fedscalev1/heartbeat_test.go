package fedscalev1

import (
	"testing"
	"time"
)

func TestSilenceLimit(t *testing.T) {
	for _, tc := range []struct{ hb, want time.Duration }{
		{time.Millisecond, 2 * time.Second},
		{100 * time.Millisecond, 2 * time.Second},
		{time.Second, 10 * time.Second},
		{time.Minute, 10 * time.Minute},
		{3 * time.Minute, 30 * time.Minute},
		{MaxHeartbeatInterval, 30 * time.Minute},
		{1 << 62, 30 * time.Minute}, // 10x would overflow
	} {
		if got := SilenceLimit(tc.hb); got != tc.want {
			t.Errorf("SilenceLimit(%s) = %s, want %s", tc.hb, got, tc.want)
		}
	}
}
