package shard

import (
	"slices"
	"strings"
)

// Owner returns the member of members that owns key under rendezvous
// (highest-random-weight) hashing: the member with the highest Score(member,
// key), ties broken by the smaller member name. It returns "" when members
// is empty. Adding a member moves to it only the keys it now wins; removing
// one moves only its keys, each to the member that scores second.
func Owner(key string, members []string) string {
	best, bestScore := "", uint64(0)
	for _, m := range members {
		s := Score(m, key)
		if best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// Score is the weight of key on member: FNV-1a (64-bit) over the bytes of
// member, a zero byte, and key, passed through the SplitMix64 finalizer so
// that keys differing in their last bytes spread over the whole range. It is
// stable across processes, machines and versions, so replicas of different
// builds agree on owners.
func Score(member, key string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(member); i++ {
		h = (h ^ uint64(member[i])) * prime
	}
	h *= prime // the zero separator byte: h ^ 0 == h
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// viewHash names a membership view in Lease annotations: the sorted member
// names joined by commas, hashed with FNV-1a and written in hex.
func viewHash(members []string) string {
	sorted := slices.Sorted(slices.Values(members))
	return hex64(Score("", strings.Join(sorted, ",")))
}

func hex64(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}
