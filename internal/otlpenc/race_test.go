//go:build race

package otlpenc

const raceEnabled = true
