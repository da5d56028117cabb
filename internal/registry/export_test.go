package registry

import "context"

// ExpireEvents runs one pass of Event expiry.
func ExpireEvents(ctx context.Context, r *Registry) error { return r.expireEvents(ctx) }
