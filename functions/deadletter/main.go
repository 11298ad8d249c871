// Command deadletter is the Broker's dead-letter sink: it stores every event
// that could not be delivered, with the reason. All behaviour lives in
// internal/deadletter.
package main

import (
	"github.com/sebelas/sebelas/internal/deadletter"
	"github.com/sebelas/sebelas/internal/function"
)

func main() { function.Main("dead-letter", deadletter.Build) }
