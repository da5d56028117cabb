package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"time"
)

// Lists are timed from sending the request to reading the last byte of the
// answer. The client decodes each answer only after timing it, to check
// the item count and follow continue tokens: decoding 100,000 objects into
// maps would take longer than serving them.

// listPage is the part of a list answer the benchmark checks.
type listPage struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	} `json:"items"`
}

// lists reports the median latency of a full list, a list paginated by
// 500, and a label selector matching 1% of the opts.objects widgets.
func lists(ctx context.Context, e *env, rep *Report) error {
	n := e.opts.objects
	cases := []struct {
		name   string
		query  url.Values
		want   int
		target *Target
	}{
		{"full list", nil, n, nil},
		{"list in pages of 500", url.Values{"limit": {"500"}}, n, nil},
		{"label selector matching 1%", selectorQuery(), matching(n), e.opts.embedded(atMost(20).at(100_000))},
	}
	for _, c := range cases {
		var rounds []float64
		for range e.opts.rounds {
			took, err := timedList(ctx, e.clients, nsBench, c.query, c.want, 0)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			rounds = append(rounds, millis(took))
		}
		rep.addRounds("list", fmt.Sprintf("%s of %s", c.name, formatNumber(float64(n), 0)), rounds, "ms", c.target)
	}
	return nil
}

// selectorQuery selects the widgets of bucket selectedBucket.
func selectorQuery() url.Values {
	return url.Values{"labelSelector": {"bucket=" + bucketLabel(selectedBucket)}}
}

// matching is how many of n widgets selectorQuery selects.
func matching(n int) int { return n/buckets + boolInt(n%buckets > selectedBucket) }

// timedList lists the widgets of namespace with query, following continue
// tokens for at most pages pages (0: all), checks that want items came
// back, and returns the time spent waiting for the server.
func timedList(ctx context.Context, c *clients, namespace string, query url.Values, want, pages int) (time.Duration, error) {
	path := "/apis/" + widgetGVR.GroupVersion().String() + "/namespaces/" + namespace + "/" + widgetGVR.Resource
	q := url.Values{}
	maps.Copy(q, query)
	var total time.Duration
	got := 0
	for n := 1; ; n++ {
		body, took, err := c.timedGet(ctx, path+"?"+q.Encode())
		if err != nil {
			return 0, err
		}
		total += took
		var page listPage
		if err := json.Unmarshal(body, &page); err != nil {
			return 0, fmt.Errorf("decode list: %w", err)
		}
		got += len(page.Items)
		if page.Metadata.Continue == "" || n == pages {
			break
		}
		q.Set("continue", page.Metadata.Continue)
	}
	if got != want {
		return 0, fmt.Errorf("listed %d items, want %d", got, want)
	}
	return total, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
