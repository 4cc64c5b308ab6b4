package processor

import (
	"encoding/binary"
	"slices"
	"unsafe"
)

// A Normalizer rewrites a value into a template before the Guard counts it,
// for example "/users/12345" into "/users/{id}", so that values differing
// only in an identifier count as one.
//
// key is the attribute key, or the empty string for a span name (the SDK
// drops attributes with an empty key, so the two cannot be confused). The
// Normalizer returns the rewritten value and true, or the value unchanged
// and false. It is called concurrently from every goroutine that ends
// spans, must be safe for that, should not allocate when it leaves a value
// unchanged, and must not panic: the Guard does not recover from a panicking
// Normalizer.
type Normalizer func(key, value string) (normalized string, changed bool)

// idPlaceholder replaces identifier-like tokens in normalized values.
const idPlaceholder = "{id}"

// normalizeIDs is the built-in normalizer. It splits s into tokens at the
// separator bytes (see isSeparator) and replaces with idPlaceholder every
// token that is
//
//   - all ASCII digits, such as "12345";
//   - a UUID in its 8-4-4-4-12 hexadecimal form, in either case and
//     whatever its groups hold: "12345678-1234-1234-1234-123456789012" is
//     one UUID, not five runs of digits, while a date such as
//     "2024-01-15", of another shape, becomes "{id}-{id}-{id}";
//   - at least 16 hexadecimal digits including a decimal digit, such as a
//     dashless UUID, a trace id or a content hash;
//   - at least 16 ASCII letters and digits including at least four digits,
//     such as a ULID or a base62 id.
//
// URLs are templated in their path, query and fragment only: wherever a
// token starts a scheme followed by "://" (RFC 3986: a letter, then
// letters, digits, '+', '-' or '.'), the scheme and the authority after
// it, up to the first '/', '?', '#', space or control byte, are kept byte
// for byte. Userinfo, host names, IPv4 and bracketed IPv6 addresses and
// ports are therefore never taken for ids: "http://127.0.0.1:8080/users/1"
// becomes "http://127.0.0.1:8080/users/{id}". Text without "://", such as
// a bare "10.0.0.1:8080", is tokenized like any other.
//
// Everything else, separators included, is kept byte for byte; invalid UTF-8
// is neither repaired nor rejected. The function is idempotent, and leaves a
// value without ASCII digits untouched without scanning it token by token.
func normalizeIDs(s string) (string, bool) {
	if !hasDigit(s) {
		return s, false
	}
	b, ok := appendNormalizedIDs(nil, s)
	if !ok {
		return s, false
	}
	// b is new and never written again: the string may share it.
	return unsafe.String(unsafe.SliceData(b), len(b)), true
}

// appendNormalizedIDs appends the built-in normalizer's output for s to dst
// and returns the extended slice and true, or dst unchanged and false when
// s needs no change. The Guard normalizes into a buffer on its stack this
// way, so that a value whose normalized form it already holds costs no
// allocation.
func appendNormalizedIDs(dst []byte, s string) ([]byte, bool) {
	if !hasDigit(s) {
		return dst, false
	}
	start := len(dst)
	copied := 0 // s[:copied] has been appended to dst
	i := 0
	for i < len(s) {
		if isSeparator(s[i]) {
			i++
			continue
		}
		if n := schemeAndAuthority(s, i); n > 0 {
			i += n // kept as it is
			continue
		}
		// A UUID spans five tokens, the first of which may be an id
		// on its own ("12345678-…"), so it is looked for first.
		var end int
		if n := uuidAt(s, i); n > 0 {
			end = i + n
		} else if end = tokenEnd(s, i); !isIDToken(s[i:end]) {
			i = end
			continue
		}
		if copied == 0 {
			// The first replacement: make room at once for s with one
			// short token replaced, the usual case; append grows dst
			// further when more short tokens are.
			dst = slices.Grow(dst, len(s)+len(idPlaceholder))
		}
		dst = append(dst, s[copied:i]...)
		dst = append(dst, idPlaceholder...)
		copied = end
		i = end
	}
	if copied == 0 {
		return dst[:start], false
	}
	return append(dst, s[copied:]...), true
}

// hasDigit reports whether s contains an ASCII digit, eight bytes at a
// time: after XOR with '0' a digit byte is below 10, and the classic
// "has a byte less than n" test finds such a byte without false positives.
func hasDigit(s string) bool {
	i := 0
	if len(s) >= 8 {
		p := unsafe.Slice(unsafe.StringData(s), len(s))
		for ; i+8 <= len(p); i += 8 {
			x := binary.LittleEndian.Uint64(p[i:]) ^ 0x3030303030303030
			if (x-0x0a0a0a0a0a0a0a0a)&^x&0x8080808080808080 != 0 {
				return true
			}
		}
	}
	for ; i < len(s); i++ {
		if isDigit(s[i]) {
			return true
		}
	}
	return false
}

// separators are the bytes that delimit tokens: URL and path punctuation,
// whitespace, brackets and the joiners found inside identifiers ("-", "_",
// "."). '%' is not one, so percent-encoded bytes stay inside their token.
var separators = func() (t [256]bool) {
	for _, c := range []byte("/ \t\r\n?&=;,:#@-_.~+()[]{}<>'\"|*!$") {
		t[c] = true
	}
	return t
}()

func isSeparator(c byte) bool { return separators[c] }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

func tokenEnd(s string, i int) int {
	for i < len(s) && !isSeparator(s[i]) {
		i++
	}
	return i
}

func isIDToken(t string) bool {
	if t == "" {
		return false
	}
	digits, hex := 0, true
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case isDigit(c):
			digits++
		case isHex(c):
		case isAlnum(c):
			hex = false
		default:
			return false
		}
	}
	switch {
	case digits == len(t):
		return true
	case len(t) >= 16 && hex && digits >= 1:
		return true
	case len(t) >= 16 && digits >= 4:
		return true
	}
	return false
}

// schemeAndAuthority returns the length of the URL scheme, "://" and
// authority starting at s[i], or 0 if no scheme followed by "://" starts
// there.
func schemeAndAuthority(s string, i int) int {
	if !isAlpha(s[i]) {
		return 0
	}
	j := i + 1
	for j < len(s) && (isAlnum(s[j]) || s[j] == '+' || s[j] == '-' || s[j] == '.') {
		j++
	}
	if len(s)-j < 3 || s[j] != ':' || s[j+1] != '/' || s[j+2] != '/' {
		return 0
	}
	j += 3
	for j < len(s) && !isAuthorityEnd(s[j]) {
		j++
	}
	return j - i
}

func isAuthorityEnd(c byte) bool {
	return c == '/' || c == '?' || c == '#' || c <= ' ' || c == 0x7f
}

// uuidAt returns 36 if a UUID in 8-4-4-4-12 form starts at s[i] and is
// followed by a separator or the end of s, and 0 otherwise.
func uuidAt(s string, i int) int {
	const n = 36
	if len(s)-i < n {
		return 0
	}
	u := s[i : i+n]
	for j := 0; j < n; j++ {
		switch j {
		case 8, 13, 18, 23:
			if u[j] != '-' {
				return 0
			}
		default:
			if !isHex(u[j]) {
				return 0
			}
		}
	}
	if i+n < len(s) && !isSeparator(s[i+n]) {
		return 0
	}
	return n
}
