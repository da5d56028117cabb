package sqlite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/setpoint/setpoint/internal/storage"
)

// Labels are stored in objects.labels and the log as a compact binary form,
// which decodes several times faster than JSON and needs no escaping:
// uvarint(count), then for each label in key order uvarint(len(key)), key,
// uvarint(len(value)), value. No labels are stored as NULL.

// errBadLabels reports a labels column that does not decode.
var errBadLabels = errors.New("malformed labels column")

// encodeLabels returns the stored form of m, nil when m is empty. Labels
// must be valid UTF-8 (every backend can store them then).
func encodeLabels(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(m))
	size := binary.MaxVarintLen64
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("label %q=%q is not valid UTF-8: %w", k, v, storage.ErrInvalid)
		}
		keys = append(keys, k)
		size += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	return b, nil
}

// decodeLabels reverses encodeLabels; it returns nil for an empty column.
func decodeLabels(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	n, b, err := readUvarint(b)
	if err != nil {
		return nil, err
	}
	// Each label takes at least two bytes, which bounds the allocation.
	if n == 0 || n > uint64(len(b)/2) {
		return nil, fmt.Errorf("%w: %d labels in %d bytes", errBadLabels, n, len(b))
	}
	m := make(map[string]string, n)
	for range n {
		var k, v string
		if k, b, err = readString(b); err != nil {
			return nil, err
		}
		if v, b, err = readString(b); err != nil {
			return nil, err
		}
		m[k] = v
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadLabels, len(b))
	}
	return m, nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	n, size := binary.Uvarint(b)
	if size <= 0 {
		return 0, nil, fmt.Errorf("%w: bad length", errBadLabels)
	}
	return n, b[size:], nil
}

func readString(b []byte) (string, []byte, error) {
	n, b, err := readUvarint(b)
	if err != nil {
		return "", nil, err
	}
	if n > uint64(len(b)) {
		return "", nil, fmt.Errorf("%w: string of %d bytes in %d", errBadLabels, n, len(b))
	}
	return string(b[:n]), b[n:], nil
}
