package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// connectListener opens the listener's connection and starts listening on
// the schema's channel.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.connConfig.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, fmt.Errorf("listen on %s: %w", s.channel, err)
	}
	return conn, nil
}

// listen is the listener goroutine: it signals Notify on every
// notification of the schema's channel, whichever store committed. When
// the connection fails it reconnects with a capped exponential backoff and
// then signals once, as commits may have gone unnoticed meanwhile. It
// returns when Close cancels s.stopCtx.
func (s *Store) listen(conn *pgx.Conn) {
	defer close(s.listenerDone)
	const firstBackoff = 50 * time.Millisecond
	backoff := firstBackoff
	for {
		if conn != nil {
			for {
				if _, err := conn.WaitForNotification(s.stopCtx); err != nil {
					break
				}
				s.signal()
			}
			_ = conn.Close(context.Background())
			conn = nil
		}
		select {
		case <-s.stopCtx.Done():
			return
		case <-time.After(backoff):
		}
		var err error
		if conn, err = s.connectListener(s.stopCtx); err != nil {
			backoff = min(2*backoff, s.opts.ReconnectBackoff)
			continue
		}
		backoff = firstBackoff
		s.signal()
	}
}
