package processor

import "go.opentelemetry.io/otel/attribute"

// The checks of keys and scopes the Guard does not track, apart from the
// paths of tracked ones.

// guardUntrackedName checks a span name of a scope the Guard does not
// track: it passes if some scope admitted it, with custom normalizers
// once normalized (without them, guardName has looked already).
func (g *Guard) guardUntrackedName(st *state, name string) (string, verdict) {
	if name == OverflowValue {
		return name, pass
	}
	if g.custom {
		v, changed := g.normalize(&keyState{normalize: g.cfg.builtin}, "", name)
		if v == OverflowValue || st.allNames.has(g.hasher.str(v)) {
			if !changed {
				return v, pass
			}
			g.normalizedNames.Add(1)
			return v, rewritten
		}
	}
	g.replaced.untracked(targetSpanName).Add(1)
	return OverflowValue, replaced
}

// guardUntrackedAttr checks an attribute of a key the Guard does not
// track: its value is replaced, unless it is OverflowValue already.
func (g *Guard) guardUntrackedAttr(kv *attribute.KeyValue) (string, verdict) {
	if kv.Value.Type() == attribute.STRING && kv.Value.AsString() == OverflowValue {
		return "", pass
	}
	g.replaced.untracked(targetAttribute).Add(1)
	return OverflowValue, replaced
}
