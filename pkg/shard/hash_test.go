package shard

import (
	"fmt"
	"hash/fnv"
	"testing"
)

func keys(n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("ns-%d/widget-%d", i%7, i)
	}
	return ks
}

// TestScoreStable pins the hash: replicas of different builds must agree.
func TestScoreStable(t *testing.T) {
	for _, c := range []struct {
		member, key string
		want        uint64
	}{
		{"a", "default/x", 0x5e2728e4e11498cc},
		{"replica-1", "ns/widget-42", 0x8be44253e003d05e},
		{"", "", 0x25fc6dd36ce04b20},
	} {
		if got := Score(c.member, c.key); got != c.want {
			t.Errorf("Score(%q, %q) = %#x, want %#x", c.member, c.key, got, c.want)
		}
		// The same as the standard library's FNV-1a, then SplitMix64's finalizer.
		f := fnv.New64a()
		f.Write([]byte(c.member + "\x00" + c.key))
		h := f.Sum64()
		h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
		h = (h ^ h>>27) * 0x94d049bb133111eb
		if h ^= h >> 31; h != c.want {
			t.Errorf("Score(%q, %q) is not FNV-1a then SplitMix64: %#x", c.member, c.key, h)
		}
	}
}

func TestOwnerBalance(t *testing.T) {
	members := []string{"alpha", "bravo", "charlie"}
	count := map[string]int{}
	ks := keys(10000)
	for _, k := range ks {
		count[Owner(k, members)]++
	}
	for _, m := range members {
		if c := count[m]; c < 3000 || c > 3667 {
			t.Errorf("%s owns %d of %d keys, want 3333±10%%", m, c, len(ks))
		}
	}
	if Owner("k", nil) != "" {
		t.Errorf("Owner with no members is not empty")
	}
}

func TestOwnerMovesOnlyWhatMust(t *testing.T) {
	three := []string{"alpha", "bravo", "charlie"}
	four := []string{"alpha", "bravo", "charlie", "delta"}
	two := []string{"alpha", "charlie"}
	ks := keys(10000)
	joined, left := 0, 0
	for _, k := range ks {
		before := Owner(k, three)
		if after := Owner(k, four); after != before {
			if after != "delta" {
				t.Fatalf("key %s moved from %s to %s when delta joined", k, before, after)
			}
			joined++
		}
		if after := Owner(k, two); after != before {
			if before != "bravo" {
				t.Fatalf("key %s moved from %s to %s when bravo left", k, before, after)
			}
			left++
		} else if before == "bravo" {
			t.Fatalf("key %s stayed with bravo after bravo left", k)
		}
	}
	if joined < 2250 || joined > 2750 {
		t.Errorf("a fourth member took %d of %d keys, want about 2500", joined, len(ks))
	}
	if left < 3000 || left > 3667 {
		t.Errorf("a leaving member's %d keys moved, want about 3333", left)
	}
	t.Logf("join moved %d keys, leave moved %d keys of %d", joined, left, len(ks))
}

func TestViewHashIgnoresOrder(t *testing.T) {
	if viewHash([]string{"b", "a"}) != viewHash([]string{"a", "b"}) {
		t.Error("the view hash depends on order")
	}
	if viewHash([]string{"a", "b"}) == viewHash([]string{"a"}) || viewHash([]string{"ab"}) == viewHash([]string{"a", "b"}) {
		t.Error("different views hash alike")
	}
}
