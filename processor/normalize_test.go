package processor

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeIDs(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"/users/{id}/orders", "/users/{id}/orders"},
		{"/users/12345/orders", "/users/{id}/orders"},
		{"/users/12345", "/users/{id}"},
		{"12345", "{id}"},
		{"GET /users/42", "GET /users/{id}"},
		{"get_user/314159", "get_user/{id}"},
		{"/api/v2/items", "/api/v2/items"},
		{"/api/v1/sha256/h264", "/api/v1/sha256/h264"},
		{"/orders/550e8400-e29b-41d4-a716-446655440000", "/orders/{id}"},
		{"/orders/550E8400-E29B-41D4-A716-446655440000/items/7", "/orders/{id}/items/{id}"},
		{"/f/550e8400-e29b-41d4-a716-446655440000.json", "/f/{id}.json"},
		{"/f/550e8400-e29b-41d4-a716-446655440000x", "/f/550e8400-e29b-41d4-a716-446655440000x"},
		{"/orders/12345678-e29b-41d4-a716-446655440000", "/orders/{id}"},
		{"/orders/20240115-ab3c-4def-9abc-0123456789ab", "/orders/{id}"},
		{"/orders/12345678-1234-1234-1234-123456789012", "/orders/{id}"},
		{"/orders/20240115-AB3C-4DEF-9ABC-0123456789AB/items", "/orders/{id}/items"},
		{"/orders/00000000-0000-0000-0000-000000000000", "/orders/{id}"},
		{"/orders/12345678-1234-1234-1234-123456789012?v=2", "/orders/{id}?v={id}"},
		{"/f/12345678-1234-1234-1234-123456789012.json", "/f/{id}.json"},
		{"/f/12345678-1234-1234-1234-123456789012x", "/f/{id}-{id}-{id}-{id}-123456789012x"},
		{"/f/12345678-1234-1234-1234-123456789012-7", "/f/{id}-{id}"},
		{"/f/7-12345678-1234-1234-1234-123456789012", "/f/{id}-{id}"},
		{"12345678-1234-1234-1234-123456789012", "{id}"},
		{"get 12345678-1234-1234-1234-123456789012", "get {id}"},
		// Only the 8-4-4-4-12 shape is a UUID; others split into tokens.
		{"2024-01-15", "{id}-{id}-{id}"},
		{"1234567-1234-1234-1234-123456789012", "{id}-{id}-{id}-{id}-{id}"},
		{"12345678-1234-1234-1234-12345678901", "{id}-{id}-{id}-{id}-{id}"},
		{"12345678-1234-1234-1234-1234567890123", "{id}-{id}-{id}-{id}-{id}"},
		{"123456789-1234-1234-1234-123456789012", "{id}-{id}-{id}-{id}-{id}"},
		{"12345678-1234-1234-123456789012", "{id}-{id}-{id}-{id}"},
		{"12345678_1234_1234_1234_123456789012", "{id}_{id}_{id}_{id}_{id}"},
		{"20240115-ab3c-4def-9abc", "{id}-ab3c-4def-9abc"},
		{"20240115-ab3g-4def-9abc-0123456789ab", "{id}-ab3g-4def-9abc-0123456789ab"},
		{"/blob/550e8400e29b41d4a716446655440000", "/blob/{id}"},
		{"/trace/4bf92f3577b34da6a3ce929d0e0e4736", "/trace/{id}"},
		{"/commit/deadbeefcafebab1", "/commit/{id}"},
		{"/commit/deadbeefcafebabe", "/commit/deadbeefcafebabe"},
		{"/x/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/x/{id}"},
		{"/x/HandleRequestV2Fast", "/x/HandleRequestV2Fast"},
		{"order-12345", "order-{id}"},
		{"user_42", "user_{id}"},
		{"2024-01-15T10:20:30Z", "{id}-{id}-15T10:{id}:30Z"},
		{"10.0.0.1:8080", "{id}.{id}.{id}.{id}:{id}"},
		{"/search?q=shoes&page=3", "/search?q=shoes&page={id}"},
		{"/a%201/b", "/a%201/b"},
		{"/ünï/123/çø", "/ünï/{id}/çø"},
		{"/bad\xff/123", "/bad\xff/{id}"},
		{"{id}", "{id}"},
		{"///", "///"},
		{"9", "{id}"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, changed := normalizeIDs(tt.in)
			if got != tt.want {
				t.Fatalf("normalizeIDs(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if changed != (tt.in != tt.want) {
				t.Fatalf("normalizeIDs(%q) changed = %v", tt.in, changed)
			}
		})
	}
}

// TestNormalizeURLs checks real URLs: only the path, query and fragment
// are templated; scheme, userinfo, host, address and port are kept.
func TestNormalizeURLs(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ipv4 and port", "http://127.0.0.1:8080/users/123", "http://127.0.0.1:8080/users/{id}"},
		{"host and port", "https://api.example.com:8443/v1/users/77?x=1#frag", "https://api.example.com:8443/v1/users/{id}?x={id}#frag"},
		{"host only", "https://10.1.2.3", "https://10.1.2.3"},
		{"host with digits", "http://node-17.db2.internal:5432/q/9", "http://node-17.db2.internal:5432/q/{id}"},
		{"ipv6", "http://[2001:db8::1]/users/42", "http://[2001:db8::1]/users/{id}"},
		{"ipv6 and port", "https://[2001:db8:85a3::8a2e:370:7334]:8443/a/1234/b", "https://[2001:db8:85a3::8a2e:370:7334]:8443/a/{id}/b"},
		{"ipv6 zone", "http://[fe80::1%25eth0]:80/x/5", "http://[fe80::1%25eth0]:80/x/{id}"},
		{"ipv6 loopback no path", "http://[::1]:9090", "http://[::1]:9090"},
		{"userinfo", "https://user:p4ss@10.0.0.5:8443/items/77", "https://user:p4ss@10.0.0.5:8443/items/{id}"},
		{"redacted userinfo", "https://REDACTED:REDACTED@example.com/u/3", "https://REDACTED:REDACTED@example.com/u/{id}"},
		{"percent-encoded path", "http://h:1/files/report%202024/7", "http://h:1/files/report%202024/{id}"},
		{"percent-encoded id", "http://h/users/%31%32", "http://h/users/%31%32"},
		{"trailing slash", "http://192.168.0.1:3000/users/123/", "http://192.168.0.1:3000/users/{id}/"},
		{"root with slash", "http://192.168.0.1:3000/", "http://192.168.0.1:3000/"},
		{"query", "http://h:80/search?page=3&id=550e8400-e29b-41d4-a716-446655440000", "http://h:80/search?page={id}&id={id}"},
		{"uuid with digits first", "https://h:8443/orders/12345678-e29b-41d4-a716-446655440000", "https://h:8443/orders/{id}"},
		{"uuid of digits", "http://10.0.0.1:80/o/12345678-1234-1234-1234-123456789012/items/3", "http://10.0.0.1:80/o/{id}/items/{id}"},
		{"uuid in a query", "http://h/search?id=20240115-ab3c-4def-9abc-0123456789ab&page=2", "http://h/search?id={id}&page={id}"},
		{"uuid in a fragment", "http://h/p#12345678-1234-1234-1234-123456789012", "http://h/p#{id}"},
		{"uuid in the host", "http://12345678-1234-1234-1234-123456789012.svc:8080/u/12345678-1234-1234-1234-123456789012", "http://12345678-1234-1234-1234-123456789012.svc:8080/u/{id}"},
		{"query right after host", "http://10.0.0.1:80?id=5", "http://10.0.0.1:80?id={id}"},
		{"fragment right after host", "http://10.0.0.1:80#5", "http://10.0.0.1:80#{id}"},
		{"fragment", "https://h/p/1#section-2", "https://h/p/{id}#section-{id}"},
		{"scheme with digits and plus", "coap+tcp://10.0.0.9:5683/sensors/12", "coap+tcp://10.0.0.9:5683/sensors/{id}"},
		{"s3", "s3://bucket-2024/objects/991", "s3://bucket-2024/objects/{id}"},
		{"in a span name", "GET http://127.0.0.1:8080/users/123", "GET http://127.0.0.1:8080/users/{id}"},
		{"nested in a query", "/r?to=http://10.9.8.7:81/u/4", "/r?to=http://10.9.8.7:81/u/{id}"},
		{"path only", "/users/123", "/users/{id}"},
		{"not a scheme", "1http://10.0.0.1/x/2", "1http://{id}.{id}.{id}.{id}/x/{id}"},
		{"no slashes", "urn:uuid:550e8400-e29b-41d4-a716-446655440000", "urn:uuid:{id}"},
		{"empty authority", "file:///var/log/app-2.log", "file:///var/log/app-{id}.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := normalizeIDs(tt.in)
			if got != tt.want || changed != (tt.in != tt.want) {
				t.Fatalf("normalizeIDs(%q) = %q, %v; want %q", tt.in, got, changed, tt.want)
			}
		})
	}
}

func TestNormalizeIDsUnchangedDoesNotAllocate(t *testing.T) {
	for _, s := range []string{"/users/{id}/orders", "GET /api/v2/items", "/api/v1/sha256", strings.Repeat("abc/", 100)} {
		if n := testing.AllocsPerRun(100, func() { _, _ = normalizeIDs(s) }); n != 0 {
			t.Errorf("normalizeIDs(%q) allocates %v times", s, n)
		}
	}
}

func TestHasDigit(t *testing.T) {
	for _, s := range []string{"", "a", "0", "abcdefgh", "abcdefg9", "9bcdefgh", "abcdefghijklmnop/", "abcdefghijklmnop/1", "\xff\xfe\xc0/:;@", strings.Repeat("x", 63) + "5"} {
		if got, want := hasDigit(s), strings.ContainsAny(s, "0123456789"); got != want {
			t.Errorf("hasDigit(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzNormalizeIDs checks that the built-in normalizer never panics, is
// idempotent, reports changes truthfully, keeps valid UTF-8 valid, and
// agrees with a byte-by-byte digit scan.
func FuzzNormalizeIDs(f *testing.F) {
	for _, s := range []string{
		"/users/12345/orders", "GET /users/{id}", "550e8400-e29b-41d4-a716-446655440000",
		"550e8400-e29b-41d4-a716-446655440000-1", "12345678-1234-1234-1234-123456789012",
		"1-12345678-1234-1234-1234-123456789012/2", "2024-01-15", "a-550e8400-e29b-41d4-a716-446655440000",
		"01ARZ3NDEKTSV4RRFFQ69G5FAV", "deadbeefcafebab1", "\xff123\xfe", "12{3", "{{1}}",
		"https://h:1/p?q=2#3", strings.Repeat("1/", 50),
		"http://127.0.0.1:8080/users/123", "http://[::1]:80/a/1?b=2#3", "u:p@h://x", "a1://", "GET x+y://1.2/3 z://4",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, changed := normalizeIDs(s)
		if changed == (got == s) {
			t.Fatalf("normalizeIDs(%q) = %q, changed = %v", s, got, changed)
		}
		again, changedAgain := normalizeIDs(got)
		if changedAgain || again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, got, again)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("normalizeIDs(%q) = %q is not valid UTF-8", s, got)
		}
		if hasDigit(s) != strings.ContainsAny(s, "0123456789") {
			t.Fatalf("hasDigit(%q) wrong", s)
		}
		if !hasDigit(s) && changed {
			t.Fatalf("normalizeIDs changed %q without digits", s)
		}
		// A URL's scheme and authority survive as they are.
		if u, err := url.Parse(s); err == nil && u.Host != "" && strings.HasPrefix(s, u.Scheme+"://") {
			end := len(u.Scheme) + 3
			for end < len(s) && !isAuthorityEnd(s[end]) {
				end++
			}
			if !strings.HasPrefix(got, s[:end]) {
				t.Fatalf("normalizeIDs(%q) = %q changed the authority %q", s, got, s[:end])
			}
		}
		// The append form, which the Guard uses with a buffer on its
		// stack, agrees and keeps what dst held.
		var buf [8]byte
		dst := append(buf[:0], "prefix"...)
		b, ok := appendNormalizedIDs(dst, s)
		want := "prefix"
		if changed {
			want += got
		}
		if ok != changed || string(b) != want {
			t.Fatalf("appendNormalizedIDs(%q, %q) = %q, %v; want %q, %v", dst, s, b, ok, want, changed)
		}
	})
}

func TestValueHasherDistinguishesValues(t *testing.T) {
	h := newValueHasher()
	seen := map[uint64]string{}
	add := func(name string, v uint64) {
		t.Helper()
		if v == 0 {
			t.Fatalf("%s hashed to 0", name)
		}
		if prev, ok := seen[v]; ok {
			t.Fatalf("%s and %s collide", name, prev)
		}
		seen[v] = name
	}
	// Every string of up to two bytes, and lengths across the short/long
	// boundary.
	add("empty", h.str(""))
	for a := range 256 {
		add("1:"+string(rune(a)), h.str(string([]byte{byte(a)})))
		for b := range 256 {
			add("2:"+string(rune(a))+string(rune(b)), h.str(string([]byte{byte(a), byte(b)})))
		}
	}
	for n := 3; n <= 40; n++ {
		add("z*"+strings.Repeat("z", n), h.str(strings.Repeat("z", n)))
		add("y*"+strings.Repeat("y", n-1)+"x", h.str(strings.Repeat("y", n-1)+"x"))
	}
	for i := range int64(1000) {
		add("int", h.num(tagInt64, uint64(i)))
	}
}

// FuzzValueHasher checks that the string hash never returns 0 or
// boolPrint, that equal strings hash equally whatever their backing memory,
// and that the fuzzer finds no two distinct strings that collide.
func FuzzValueHasher(f *testing.F) {
	f.Add("", "a")
	f.Add("abcdefgh", "abcdefgi")
	f.Add("0123456789abcdef", "0123456789abcdeg")
	f.Add("/users/{id}/orders/{id}", "/users/{id}/orders/{ix}")
	f.Add("a string longer than thirty-two bytes", "a string longer than thirty-two bytez")
	f.Add(strings.Repeat("x", 97), strings.Repeat("x", 96)+"y")
	f.Add(strings.Repeat("y", 129), strings.Repeat("y", 128))
	h := newValueHasher()
	f.Fuzz(func(t *testing.T, a, b string) {
		ha, hb := h.str(a), h.str(b)
		if ha <= boolPrint || hb <= boolPrint {
			t.Fatal("hash is 0 or boolPrint")
		}
		if a != b && ha == hb {
			t.Fatalf("%q and %q collide", a, b)
		}
		if ha != h.str(strings.Clone(a)) {
			t.Fatal("hash depends on memory, not bytes")
		}
		if a == b && ha != hb {
			t.Fatal("equal strings hash differently")
		}
	})
}
