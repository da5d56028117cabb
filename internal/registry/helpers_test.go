package registry_test

import "time"

// waitTimeout bounds polling for eventually-true conditions.
const waitTimeout = 10 * time.Second

// tick paces polling.
func tick() <-chan time.Time { return time.After(10 * time.Millisecond) }
