package client

// SetLimits lowers the bounds c reads, for tests of large answers.
func SetLimits[T any, PT interface {
	*T
	Object
}](c *Client[T, PT], object, list int64) {
	c.conn.maxObjectBytes, c.conn.maxListBytes = object, list
}
