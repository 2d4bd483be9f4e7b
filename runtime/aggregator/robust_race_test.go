//go:build race

package aggregator_test

// raceEnabled is set when the race detector is on: the attack test's 13
// jobs then take minutes and add no concurrency the other job tests lack.
const raceEnabled = true
