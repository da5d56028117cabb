package jsondec

// TooDeep reports whether the JSON text b nests arrays and objects more
// than limit levels deep (a document that is one object is one level).
// It reads b once, byte by byte, without recursion, so it is safe on any
// input, and it does not check that b is valid JSON: a malformed
// document is judged by its brackets outside strings, and left for a
// decoder to reject.
func TooDeep(b []byte, limit int) bool {
	depth := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++ // the escaped byte cannot end the string
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > limit {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}
