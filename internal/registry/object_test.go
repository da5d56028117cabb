package registry

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// TestAppendJSONMatchesMarshal holds the stored form's encoder to
// json.Marshal's bytes on random values: odd strings, floats, numbers,
// nil containers and other Go types included.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	strs := []string{"", "a", "ab c", `q"uote`, `back\slash`, "<b>&", "<", ">", "&", "tab\t", "nl\n", "é", "\u2028", "\xff", "\x7f", "z" + string(rune(0x1f))}
	var gen func(depth int) any
	gen = func(depth int) any {
		switch k := rng.IntN(12); {
		case k == 0:
			return strs[rng.IntN(len(strs))]
		case k == 1:
			return int64(rng.IntN(1000) - 500)
		case k == 2:
			return []float64{0.5, 1e21, 1e-7, -3, 123456789.25, math.MaxFloat64}[rng.IntN(6)]
		case k == 3:
			return rng.IntN(2) == 0
		case k == 4:
			return nil
		case k == 5:
			return json.Number("12")
		case k == 6:
			return map[string]string{"b": "<", "a": "x"}
		case k == 7:
			var m map[string]any
			return m
		case k == 8:
			var l []any
			return l
		case k == 9 && depth > 0:
			l := []any{}
			for range rng.IntN(4) {
				l = append(l, gen(depth-1))
			}
			return l
		case depth > 0:
			m := map[string]any{}
			for range rng.IntN(5) {
				m[strs[rng.IntN(len(strs))]+strs[rng.IntN(len(strs))]] = gen(depth - 1)
			}
			return m
		}
		return "leaf"
	}
	for range 3000 {
		v := map[string]any{"k": gen(4), "metadata": map[string]any{"name": "x"}}
		want, _ := json.Marshal(v)
		got, err := encodeValue(v)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%#v:\nencodeValue %s (%v)\njson.Marshal %s", v, got, err, want)
		}
	}
	if _, err := encodeValue(map[string]any{"f": math.NaN()}); err == nil {
		t.Fatal("NaN encoded")
	}
}

// BenchmarkEncodeValue encodes an object of about a kilobyte and a half
// with two managedFields entries, as stored after a status update.
func BenchmarkEncodeValue(b *testing.B) {
	var obj map[string]any
	if err := json.Unmarshal([]byte(`{"apiVersion":"bench.setpoint.dev/v1","kind":"Widget","metadata":{"creationTimestamp":"2026-11-26T10:00:00Z","generation":1,"labels":{"bucket":"b7"},"managedFields":[{"apiVersion":"bench.setpoint.dev/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:bucket":{}}},"f:spec":{".":{},"f:color":{},"f:data":{},"f:replicas":{}}},"manager":"benchdrv","operation":"Update","time":"2026-11-26T10:00:00Z"},{"apiVersion":"bench.setpoint.dev/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:observedGeneration":{},"f:phase":{}}},"manager":"benchdrv","operation":"Update","subresource":"status","time":"2026-11-26T10:00:01Z"}],"name":"w-1","namespace":"bench","uid":"0b7e4a4c-4a0e-4a57-9d0b-0d2a0c7a8a1e"},"spec":{"color":"red","data":"`+string(bytes.Repeat([]byte("x"), 800))+`","replicas":1},"status":{"observedGeneration":1,"phase":"Ready"}}`), &obj); err != nil {
		b.Fatal(err)
	}
	obj = convertNumbers(obj).(map[string]any)
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeValue(obj); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(obj); err != nil {
				b.Fatal(err)
			}
		}
	})
}
