//go:build !race

package netmap

const raceEnabled = false
