package mirror

import (
	"reflect"
	"testing"
)

func TestMatches(t *testing.T) {
	type (
		theirs struct {
			a int64
			b string
			c []byte
		}
		same struct {
			a int64
			b string
			c []byte
		}
		renamed struct {
			a int64
			x string
			c []byte
		}
		retyped struct {
			a uint64
			b string
			c []byte
		}
		shorter struct {
			a int64
			b string
		}
		padded struct {
			a int32
			_ int32
			b string
			c []byte
		}
	)
	for _, tc := range []struct {
		ours reflect.Type
		want bool
	}{
		{reflect.TypeFor[same](), true},
		{reflect.TypeFor[renamed](), false},
		{reflect.TypeFor[retyped](), false},
		{reflect.TypeFor[shorter](), false},
		{reflect.TypeFor[padded](), false},
		{reflect.TypeFor[int](), false},
	} {
		if got := Matches(reflect.TypeFor[theirs](), tc.ours); got != tc.want {
			t.Errorf("Matches(theirs, %v) = %v, want %v", tc.ours, got, tc.want)
		}
	}
}

func TestMatchesPrefix(t *testing.T) {
	type (
		theirs struct {
			a int64
			b string
			c []byte
		}
		prefix struct {
			a int64
			b string
		}
		renamed struct {
			a int64
			x string
		}
		retyped struct {
			a uint64
		}
		longer struct {
			a int64
			b string
			c []byte
			d int
		}
	)
	for _, tc := range []struct {
		ours reflect.Type
		want bool
	}{
		{reflect.TypeFor[theirs](), true},
		{reflect.TypeFor[prefix](), true},
		{reflect.TypeFor[renamed](), false},
		{reflect.TypeFor[retyped](), false},
		{reflect.TypeFor[longer](), false},
		{reflect.TypeFor[int](), false},
	} {
		if got := MatchesPrefix(reflect.TypeFor[theirs](), tc.ours); got != tc.want {
			t.Errorf("MatchesPrefix(theirs, %v) = %v, want %v", tc.ours, got, tc.want)
		}
	}
}
