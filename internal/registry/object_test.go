package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
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

// referenceDecode is decodeValue by json.Decoder alone.
func referenceDecode(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return convertNumbers(m).(map[string]any), nil
}

// TestDecodeValueMatchesDecoder holds decodeValue's own reader to
// json.Decoder's result on random documents, odd strings and numbers,
// whitespace, and corrupted or cut copies of them.
func TestDecodeValueMatchesDecoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	strs := []string{"", "a", `q"uote`, `back\slash`, "<", "é", "\u2028", "\xff", "\x7f", "\\u00e9", "nl\n"}
	nums := []string{"0", "-0", "12", "-7", "1.5", "1e3", "1E-2", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "1e400", "0.000001", "01", "1.", ".5", "-", "+1", "1e", "2.50"}
	var gen func(depth int) string
	gen = func(depth int) string {
		ws := []string{"", " ", "\n\t", "\r "}[rng.IntN(4)]
		switch k := rng.IntN(9); {
		case k == 0:
			b, _ := json.Marshal(strs[rng.IntN(len(strs))])
			if rng.IntN(4) == 0 {
				return `"` + strs[rng.IntN(len(strs))] + `"`
			}
			return ws + string(b)
		case k == 1:
			return nums[rng.IntN(len(nums))] + ws
		case k == 2:
			return []string{"true", "false", "null", "nul", "tru"}[rng.IntN(5)]
		case k == 3 && depth > 0:
			s := "[" + ws
			for i := range rng.IntN(4) {
				if i > 0 {
					s += ","
				}
				s += gen(depth - 1)
			}
			return s + "]"
		case depth > 0:
			return genObject(rng, gen, depth, ws)
		}
		return `"leaf"`
	}
	for range 5000 {
		doc := []byte(genObject(rng, gen, 4, " "))
		switch rng.IntN(4) {
		case 0:
			doc = doc[:rng.IntN(len(doc)+1)]
		case 1:
			doc[rng.IntN(len(doc))] = "{}[],:\"\\x0 "[rng.IntN(11)]
		case 2:
			doc = append(doc, " x"...)
		}
		want, werr := referenceDecode(doc)
		got, gerr := decodeValue(doc)
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\ndecodeValue %#v (%v)\njson.Decoder %#v (%v)", doc, got, gerr, want, werr)
		}
	}
}

func genObject(rng *rand.Rand, gen func(int) string, depth int, ws string) string {
	s := "{" + ws
	for i := range rng.IntN(4) {
		if i > 0 {
			s += ","
		}
		k, _ := json.Marshal([]string{"a", "b", "é", `k"`, "a"}[rng.IntN(5)])
		s += string(k) + ws + ":" + gen(depth-1)
	}
	return s + "}"
}

// BenchmarkDecodeValue decodes what BenchmarkEncodeValue encodes.
func BenchmarkDecodeValue(b *testing.B) {
	doc := []byte(`{"apiVersion":"bench.setpoint.dev/v1","kind":"Widget","metadata":{"creationTimestamp":"2026-11-26T10:00:00Z","generation":1,"labels":{"bucket":"b7"},"managedFields":[{"apiVersion":"bench.setpoint.dev/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:bucket":{}}},"f:spec":{".":{},"f:color":{},"f:data":{},"f:replicas":{}}},"manager":"benchdrv","operation":"Update","time":"2026-11-26T10:00:00Z"},{"apiVersion":"bench.setpoint.dev/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:observedGeneration":{},"f:phase":{}}},"manager":"benchdrv","operation":"Update","subresource":"status","time":"2026-11-26T10:00:01Z"}],"name":"w-1","namespace":"bench","uid":"0b7e4a4c-4a0e-4a57-9d0b-0d2a0c7a8a1e"},"spec":{"color":"red","data":"` + string(bytes.Repeat([]byte("x"), 800)) + `","replicas":1},"status":{"observedGeneration":1,"phase":"Ready"}}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeValue(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Decoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := referenceDecode(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
