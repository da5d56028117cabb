package apiserver

// SetMaxListLimit changes the cap on the limit parameter until the
// returned function restores it.
func SetMaxListLimit(n int64) (restore func()) {
	old := maxListLimit
	maxListLimit = n
	return func() { maxListLimit = old }
}
