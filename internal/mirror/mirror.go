// Package mirror checks the structs this module declares to read a
// dependency's values in place: a mirror has, field for field, the layout
// of a type whose fields are unexported, so that a pointer to one can be
// read as a pointer to the other instead of through the type's methods.
//
// The policy is the same wherever a mirror is used: the layout is checked
// once with reflect before the first in-place read; when it does not match
// (a new version of the dependency changed the type), the caller reads the
// value through its methods instead, correct but slower; and a test of the
// caller fails while the mirror is out of date, so that it is updated.
package mirror

import "reflect"

// Matches reports whether the structs theirs and ours have the same size
// and the same fields in the same order, each with the same name, type and
// offset.
func Matches(theirs, ours reflect.Type) bool {
	return MatchesPrefix(theirs, ours) && theirs.Size() == ours.Size() && theirs.NumField() == ours.NumField()
}

// MatchesPrefix reports whether the struct ours has the first fields of
// the struct theirs: each of its fields has the name, type and offset of
// the field of theirs in the same place, and ours is no larger than
// theirs. A pointer to a theirs can then be read as a pointer to an ours.
func MatchesPrefix(theirs, ours reflect.Type) bool {
	if theirs.Kind() != reflect.Struct || ours.Kind() != reflect.Struct ||
		theirs.Size() < ours.Size() || theirs.NumField() < ours.NumField() {
		return false
	}
	for i := range ours.NumField() {
		a, b := theirs.Field(i), ours.Field(i)
		if a.Name != b.Name || a.Type != b.Type || a.Offset != b.Offset {
			return false
		}
	}
	return true
}
