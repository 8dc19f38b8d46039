package bench

import (
	"testing"
	"time"
)

func TestRound3(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{999, "999ns"},
		{1234, "1.23µs"},
		{45_678, "45.7µs"},
		{123_456, "123µs"},
		{1_234_567, "1.23ms"},
		{999_999, "1ms"},
		{12_345_678_901, "12.3s"},
	} {
		if got := Round3(tc.in).String(); got != tc.want {
			t.Errorf("Round3(%d) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
