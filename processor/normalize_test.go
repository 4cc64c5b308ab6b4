package processor

import (
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
		{"https://api.example.com:8443/v1/users/77?x=1#frag", "https://api.example.com:{id}/v1/users/{id}?x={id}#frag"},
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
		"550e8400-e29b-41d4-a716-446655440000-1", "a-550e8400-e29b-41d4-a716-446655440000",
		"01ARZ3NDEKTSV4RRFFQ69G5FAV", "deadbeefcafebab1", "\xff123\xfe", "12{3", "{{1}}",
		"https://h:1/p?q=2#3", strings.Repeat("1/", 50),
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

// FuzzValueHasher checks that the short-string hash never returns 0 and
// that equal strings hash equally whatever their backing memory.
func FuzzValueHasher(f *testing.F) {
	f.Add("", "a")
	f.Add("abcdefgh", "abcdefgi")
	f.Add("0123456789abcdef", "0123456789abcdeg")
	f.Add("/users/{id}/orders/{id}", "/users/{id}/orders/{ix}")
	f.Add("a string longer than thirty-two bytes", "a string longer than thirty-two bytez")
	h := newValueHasher()
	f.Fuzz(func(t *testing.T, a, b string) {
		ha, hb := h.str(a), h.str(b)
		if ha == 0 || hb == 0 {
			t.Fatal("hash is 0")
		}
		if ha != h.str(strings.Clone(a)) {
			t.Fatal("hash depends on memory, not bytes")
		}
		if a == b && ha != hb {
			t.Fatal("equal strings hash differently")
		}
	})
}
