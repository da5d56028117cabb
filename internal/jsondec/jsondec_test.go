package jsondec

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	sigsjson "sigs.k8s.io/json"
)

// TestStrictObjectMatchesUnmarshalStrict parses random request bodies
// (nested objects and lists, repeated keys, escapes, non-ASCII and
// invalid UTF-8, control characters, numbers of every form and range,
// whitespace, trailing bytes, cut documents) with Object in strict mode
// and with sigs.k8s.io/json's UnmarshalStrict refusing repeated fields,
// as request bodies are read: wherever Object answers, UnmarshalStrict
// must succeed without a strict error and give the same map.
func TestStrictObjectMatchesUnmarshalStrict(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 9))
	strs := []string{`"a"`, `"b"`, `""`, `"<é>"`, `"\u00e9\n"`, `"\ud800"`, "\"\xff\"", "\"tab\t\"", `"\x"`, `"q\"q"`, `"a`}
	nums := []string{"0", "-0", "7", "-12", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1.5", "1e3", "1E-2", "1e400", "-1e400", "1e-400", "01", "1.", ".5", "-", "+1", "2e+5"}
	spaces := []string{"", " ", "\n", "\t\r\n "}
	sp := func() string { return spaces[rng.IntN(len(spaces))] }
	var value func(depth int) string
	value = func(depth int) string {
		switch k := rng.IntN(8); {
		case k == 0:
			return strs[rng.IntN(len(strs))]
		case k == 1:
			return nums[rng.IntN(len(nums))]
		case k == 2:
			return []string{"true", "false", "null", "nul", "True"}[rng.IntN(5)]
		case k == 3 && depth > 0:
			items := []string{}
			for range rng.IntN(4) {
				items = append(items, sp()+value(depth-1)+sp())
			}
			return "[" + strings.Join(items, ",") + "]"
		case depth > 0:
			return object(rng, depth, strs, sp, value)
		}
		return `"leaf"`
	}
	answered := 0
	for i := range 20000 {
		doc := sp() + object(rng, 4, strs, sp, value) + sp()
		switch rng.IntN(12) {
		case 0:
			doc += "x"
		case 1:
			doc += "{}"
		case 2:
			doc = doc[:rng.IntN(len(doc))]
		}
		got, ok := Object([]byte(doc), true)
		if !ok {
			continue
		}
		answered++
		var want map[string]any
		strict, err := sigsjson.UnmarshalStrict([]byte(doc), &want, sigsjson.DisallowDuplicateFields)
		if err != nil || len(strict) > 0 {
			t.Fatalf("document %d %q: Object answered, UnmarshalStrict says %v %v", i, doc, err, strict)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("document %d %q:\nObject          %#v\nUnmarshalStrict %#v", i, doc, got, want)
		}
	}
	t.Logf("Object answered %d of 20000 documents", answered)
	if answered < 2000 {
		t.Fatalf("Object answered only %d of 20000 documents", answered)
	}
}

// object is a random JSON object, its keys repeated now and then.
func object(rng *rand.Rand, depth int, strs []string, sp func() string, value func(int) string) string {
	fields := []string{}
	keys := []string{`"a"`, `"b"`, `"c"`, `"d"`, `"e"`, `"f"`, `"g"`}
	for i := range rng.IntN(5) {
		k := keys[i]
		if rng.IntN(10) == 0 {
			k = strs[rng.IntN(len(strs))]
		}
		fields = append(fields, sp()+k+sp()+":"+sp()+value(depth-1)+sp())
	}
	return "{" + strings.Join(fields, ",") + "}"
}
