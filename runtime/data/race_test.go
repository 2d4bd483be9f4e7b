//go:build race

package data

// raceEnabled is set when the race detector is on; tests that count
// allocations skip then, since sync.Pool drops items at random under it.
const raceEnabled = true
