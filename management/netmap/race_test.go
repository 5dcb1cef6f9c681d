//go:build race

package netmap

const raceEnabled = true
