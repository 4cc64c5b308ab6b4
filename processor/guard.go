package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tracekeeper/tracekeeper/internal/mirror"
	"github.com/tracekeeper/tracekeeper/internal/selfobs"
)

const (
	// OverflowValue replaces a span name or an attribute value that would
	// exceed its limit. Attribute values of any type are replaced with this
	// string.
	OverflowValue = "tracekeeper.overflow"
	// OverflowKey is the boolean attribute, set to true, that marks a span
	// in which the Guard replaced at least one value with OverflowValue.
	OverflowKey attribute.Key = "tracekeeper.cardinality.overflow"
	// WouldOverflowKey is the boolean attribute, set to true, that marks a
	// span in which a Guard in report-only mode (WithReportOnly) would have
	// replaced at least one value with OverflowValue.
	WouldOverflowKey attribute.Key = "tracekeeper.cardinality.would_overflow"
)

// Guard is a span processor that bounds the number of distinct span names
// (per instrumentation scope) and attribute values (per attribute key) that
// reach the backend. Create one with CardinalityGuard; the zero value is not
// usable.
//
// All methods are safe for concurrent use. Checking a value that has been
// admitted before takes no lock; admitting a new value locks only the set of
// the key it belongs to.
type Guard struct {
	// The fields every span reads come first, in two cache lines.
	next      sdktrace.SpanProcessor
	state     atomic.Pointer[state]
	stopped   atomic.Bool
	custom    bool         // custom normalizers are configured
	rename    bool         // WithHTTPRouteSpanNames
	report    bool         // WithReportOnly
	spanFast  bool         // spans are looked up in the state's spanCache
	reset     int64        // the reset interval in nanoseconds, or 0
	nextReset atomic.Int64 // unix nanoseconds; used only with a reset interval
	hasher    valueHasher

	cfg          config
	shutdownOnce sync.Once

	replaced        *replacedCounters
	normalizedAttrs atomic.Uint64
	normalizedNames atomic.Uint64
	marked          atomic.Uint64
	resets          atomic.Uint64

	metrics *selfobs.Registration
	log     *reporter // nil without WithLogger
}

var _ sdktrace.SpanProcessor = (*Guard)(nil)

// state is everything a reset forgets.
type state struct {
	attrs *keyTable // attribute key → admitted values
	names *keyTable // scope name → the span names it brought
	// allNames holds the span names admitted in any scope, which pass in
	// every scope; the scopes only count the names they brought. A known
	// name passes without reading the span's scope, which costs more than
	// the rest of the name's check (a read-only span copies itself to
	// return it).
	allNames *nameSet
	// pairs holds the attributes known to pass, for admitted.
	pairs *pairSet
	// spans holds spans that passed unchanged, by identity.
	spans spanCache
	// routes builds and keeps span names for WithHTTPRouteSpanNames.
	routes routeNames
}

// CardinalityGuard returns a Guard configured by opts. With no options it
// admits DefaultValueLimit values per attribute key and DefaultSpanNameLimit
// names per instrumentation scope, tracks at most DefaultMaxKeys keys and
// scopes, never resets, and applies the built-in identifier normalizer to
// span names and URL-like attributes. See the package documentation for the
// two ways to wire it.
func CardinalityGuard(opts ...Option) *Guard {
	cfg := newConfig(opts)
	exempt := make(map[string]struct{}, len(cfg.exempt)+1)
	for k := range cfg.exempt {
		exempt[k] = struct{}{}
	}
	exempt[string(OverflowKey)] = struct{}{}
	exempt[string(WouldOverflowKey)] = struct{}{}
	cfg.exempt = exempt

	g := &Guard{
		cfg:      cfg,
		next:     cfg.next,
		custom:   len(cfg.normalizers) > 0,
		rename:   cfg.routeNames,
		report:   cfg.reportOnly,
		reset:    int64(cfg.reset),
		hasher:   newValueHasher(),
		replaced: newReplacedCounters(),
	}
	// The span cache matches values by identity, which needs them read in
	// place, and holds only spans whose verdict depends on nothing but
	// their name and attributes: custom normalizers may not be pure, and
	// WithHTTPRouteSpanNames looks at the span's kind too.
	g.spanFast = valuesInPlace && !g.custom && !g.rename
	g.state.Store(g.newState())
	if cfg.reset > 0 {
		g.nextReset.Store(cfg.clock.Now().UnixNano() + int64(cfg.reset))
	}
	var err error
	g.metrics, err = newSelfMetrics(cfg.meterProvider, g)
	selfobs.Report(cfg.logger, err)
	if cfg.logger != nil {
		g.log = newReporter(g, cfg.logger, cfg.logInterval, cfg.clock)
		go g.log.run()
	}
	return g
}

func (g *Guard) newState() *state {
	return &state{
		attrs:    newKeyTable(g.cfg.maxKeys),
		names:    newKeyTable(g.cfg.maxKeys),
		allNames: newNameSet(),
		pairs:    newPairSet(),
	}
}

// current returns the state to use for one span, resetting it first when
// the reset interval has elapsed.
func (g *Guard) current() *state {
	if g.reset > 0 {
		g.resetIfDue()
	}
	return g.state.Load()
}

// resetIfDue replaces the state with a new one when the reset interval
// has elapsed. It is apart from current so that current is inlined.
func (g *Guard) resetIfDue() {
	now := g.cfg.clock.Now().UnixNano()
	if due := g.nextReset.Load(); now >= due &&
		g.nextReset.CompareAndSwap(due, now+g.reset) {
		g.state.Store(g.newState())
		g.resets.Add(1)
	}
}

// OnStart implements sdktrace.SpanProcessor.
//
// With a downstream processor it only forwards the call. Without one it
// guards the span's name and the attributes present at start, rewriting
// them through s.SetName and s.SetAttributes.
func (g *Guard) OnStart(parent context.Context, s sdktrace.ReadWriteSpan) {
	if g.stopped.Load() {
		return
	}
	if g.next != nil {
		g.next.OnStart(parent, s)
		return
	}
	st := g.current()
	var (
		probe spanProbe
		attrs []attribute.KeyValue
		orig  string
	)
	var l *mirror.Live // the span read in place, when the span cache is on
	if g.spanFast {
		if l = mirror.KnownLive(s); l == nil {
			l = mirror.LiveOf(s)
		}
	}
	if l != nil {
		var (
			hit bool
			n   int
		)
		if probe, orig, n, hit = st.spans.lookupLive(l); hit {
			return
		}
		attrs = s.Attributes()
		if probe.h != 0 && n != len(attrs) {
			// The SDK dropped attributes of a key set twice: the
			// span is learnt as it now is.
			probe.h = st.spans.hash(orig, attrs)
		}
	} else {
		attrs, orig = s.Attributes(), s.Name()
		if g.spanFast {
			gate := st.spans.gate(orig)
			if open(gate) || sampled(s.SpanContext().SpanID()) {
				var hit bool
				if probe, hit = st.spans.lookup(gate, orig, attrs); hit {
					return
				}
			}
		}
	}
	g.guardStart(s, st, orig, attrs, probe)
}

// guardStart is OnStart for a span the span cache did not pass: it guards
// the span's name orig and attributes attrs, and tells the cache the
// outcome if probe says the span was looked up. It is apart from OnStart
// so that the spans the cache passes do not pay for its frame.
func (g *Guard) guardStart(s sdktrace.ReadWriteSpan, st *state, orig string, attrs []attribute.KeyValue, probe spanProbe) {
	name, nameV := g.spanName(st, s, orig, attrs)
	overflow := nameV == replaced
	clean := nameV == pass
	report := g.report
	if nameV != pass && !report {
		s.SetName(name)
	}
	var buf *[]attribute.KeyValue
	for i := g.admitted(st, attrs); i < len(attrs); i = g.after(st, attrs, i) {
		kv := &attrs[i]
		nv, v := g.guardAttr(st, kv)
		if v == pass {
			continue
		}
		clean = false
		overflow = overflow || v == replaced
		if report {
			continue
		}
		if buf == nil {
			buf = scratch.get()
		}
		*buf = append(*buf, attribute.String(string(kv.Key), nv))
	}
	if overflow {
		g.marked.Add(1)
		if buf == nil {
			buf = scratch.get()
		}
		*buf = append(*buf, g.marker().Bool(true))
	}
	if buf != nil {
		s.SetAttributes(*buf...)
		scratch.put(buf)
	}
	if probe.h != 0 {
		st.spans.missed(probe, clean, orig, attrs)
	}
}

// marker returns the key that marks a span with an overflow.
func (g *Guard) marker() attribute.Key {
	if g.report {
		return WouldOverflowKey
	}
	return OverflowKey
}

// spanName guards the name of span s, whose attributes are attrs. With
// WithHTTPRouteSpanNames, a server span with an http.route is renamed
// first.
func (g *Guard) spanName(st *state, s sdktrace.ReadOnlySpan, name string, attrs []attribute.KeyValue) (string, verdict) {
	if !g.rename {
		return g.guardName(st, s, name)
	}
	renamed := st.routes.name(s.SpanKind(), attrs, name)
	nv, v := g.guardName(st, s, renamed)
	if v == pass && renamed != name {
		g.normalizedNames.Add(1)
		v = rewritten
	}
	return nv, v
}

// scratch holds the slices OnStart collects rewritten attributes in;
// SetAttributes copies them into the span, so they can be reused at once.
var scratch kvPool

// kvPool is a typed pool of attribute slices.
type kvPool struct{ p sync.Pool }

func (p *kvPool) get() *[]attribute.KeyValue {
	if s, ok := p.p.Get().(*[]attribute.KeyValue); ok {
		return s
	}
	s := make([]attribute.KeyValue, 0, 8)
	return &s
}

func (p *kvPool) put(s *[]attribute.KeyValue) {
	clear(*s)
	*s = (*s)[:0]
	p.p.Put(s)
}

// OnEnd implements sdktrace.SpanProcessor.
//
// With a downstream processor it guards the ended span's name and all of
// its attributes and forwards to the downstream either the span itself,
// when nothing changed, or a read-only view with the rewritten name and
// attributes. Without one it does nothing.
func (g *Guard) OnEnd(s sdktrace.ReadOnlySpan) {
	if g.next == nil || g.stopped.Load() {
		return
	}
	// The steady state's path, sanitize's first steps for an SDK
	// snapshot without a reset interval, written out here: a span the
	// span cache holds then costs no call but the lookup's.
	if d := mirror.KnownSpan(s); d != nil && g.spanFast && g.reset == 0 {
		st := g.state.Load()
		name, attrs := d.Name(), d.Attributes()
		var probe spanProbe
		if gate := st.spans.gate(name); open(gate) || sampled(d.SpanContext().SpanID()) {
			var hit bool
			if probe, hit = st.spans.lookup(gate, name, attrs); hit {
				g.next.OnEnd(s)
				return
			}
		}
		g.next.OnEnd(g.check(s, st, name, attrs, probe))
		return
	}
	g.next.OnEnd(g.sanitize(s))
}

// sanitize returns s, or a view of s with its name and attributes guarded.
func (g *Guard) sanitize(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	st := g.current()
	var (
		attrs []attribute.KeyValue
		name  string
	)
	d := mirror.KnownSpan(s)
	if d == nil {
		d = mirror.SpanOf(s)
	}
	if d != nil {
		attrs, name = d.Attributes(), d.Name() // without copying the span twice
	} else {
		attrs, name = s.Attributes(), s.Name()
	}
	var probe spanProbe
	if g.spanFast {
		gate := st.spans.gate(name)
		if open(gate) || sampled(spanID(s, d)) {
			var hit bool
			if probe, hit = st.spans.lookup(gate, name, attrs); hit {
				return s
			}
		}
	}
	return g.check(s, st, name, attrs, probe)
}

// check is sanitize for a span the span cache did not pass, of this name
// and these attributes, with what the cache's lookup found out if the
// span was looked up.
func (g *Guard) check(s sdktrace.ReadOnlySpan, st *state, name string, attrs []attribute.KeyValue, probe spanProbe) sdktrace.ReadOnlySpan {
	orig := name
	name, nameV := g.spanName(st, s, name, attrs)
	n := g.admitted(st, attrs)
	if n == len(attrs) && nameV == pass {
		if probe.h != 0 {
			st.spans.missed(probe, true, orig, attrs)
		}
		return s
	}
	if g.report {
		if probe.h != 0 {
			st.spans.missed(probe, false, orig, attrs)
		}
		return g.reportOnly(s, st, attrs, n, nameV == replaced)
	}
	overflow := nameV == replaced
	var (
		view *guardedSpan
		out  []attribute.KeyValue // the view's copy of attrs
	)
	for i := n; i < len(attrs); i = g.after(st, attrs, i) {
		kv := &attrs[i]
		nv, v := g.guardAttr(st, kv)
		if v == pass {
			continue
		}
		if view == nil {
			view, out = newView(s, attrs)
		}
		out[i] = attribute.String(string(kv.Key), nv)
		overflow = overflow || v == replaced
	}
	if overflow {
		g.marked.Add(1)
		if view != nil || !isMarked(attrs, OverflowKey) {
			if view == nil {
				view, out = newView(s, attrs)
			}
			out = markIn(out, OverflowKey)
		}
	}
	if view == nil {
		if nameV == pass {
			if probe.h != 0 {
				st.spans.missed(probe, !overflow, orig, attrs)
			}
			return s
		}
		view, out = &guardedSpan{ReadOnlySpan: s}, attrs
	}
	if probe.h != 0 {
		st.spans.missed(probe, false, orig, attrs)
	}
	view.name, view.attrs = name, out
	return view
}

// spanID returns the ID of s, whose data is d when d is not nil.
func spanID(s sdktrace.ReadOnlySpan, d *mirror.Span) trace.SpanID {
	if d != nil {
		return d.SpanContext().SpanID()
	}
	return s.SpanContext().SpanID()
}

// reportOnly is sanitize in report-only mode: it counts what it would
// replace in attrs[n:] and, if anything (or, when overflow is set, the
// name) would be, returns a view of s with the WouldOverflowKey marker and
// nothing else changed.
func (g *Guard) reportOnly(s sdktrace.ReadOnlySpan, st *state, attrs []attribute.KeyValue, n int, overflow bool) sdktrace.ReadOnlySpan {
	for i := n; i < len(attrs); i = g.after(st, attrs, i) {
		if _, v := g.guardAttr(st, &attrs[i]); v == replaced {
			overflow = true
		}
	}
	if !overflow {
		return s
	}
	g.marked.Add(1)
	if isMarked(attrs, WouldOverflowKey) {
		return s
	}
	view, out := newView(s, attrs)
	view.name, view.attrs = s.Name(), markIn(out, WouldOverflowKey)
	return view
}

// isMarked reports whether attrs hold key = true.
func isMarked(attrs []attribute.KeyValue, key attribute.Key) bool {
	i := slices.IndexFunc(attrs, func(kv attribute.KeyValue) bool { return kv.Key == key })
	return i >= 0 && attrs[i].Value.Type() == attribute.BOOL && attrs[i].Value.AsBool()
}

// markIn sets key = true in attrs, a view's own copy, replacing an
// attribute of that key or appending one.
func markIn(attrs []attribute.KeyValue, key attribute.Key) []attribute.KeyValue {
	if i := slices.IndexFunc(attrs, func(kv attribute.KeyValue) bool { return kv.Key == key }); i >= 0 {
		attrs[i] = key.Bool(true)
		return attrs
	}
	return append(attrs, key.Bool(true))
}

// admitted returns how many of the leading attributes pass unchanged
// because they passed before, which in the steady state is all of them.
// It is the hot path of every span, so it decides only what it can decide
// with a hash and a probe, without locks, allocations, counters or finding
// the key's state: a boolean, an attribute whose fingerprint (see
// valueHasher.fingerprint) the state's pair set holds, or one of an exempt key the
// set holds (see exemptPrint). At anything else it stops, and guardAttr
// decides about that attribute; its verdict on the attributes admitted
// passes is the same.
func (g *Guard) admitted(st *state, attrs []attribute.KeyValue) int {
	pairs := st.pairs.tab.Load()
	h := &g.hasher
	custom := g.custom
	inPlace := valuesInPlace
	for i := range attrs {
		kv := &attrs[i]
		// rawValue and h.rawFingerprint, written out so that only
		// strings cost a call.
		var (
			typ attribute.Type
			num uint64
			str string
		)
		if inPlace {
			d := mirror.ValueOf(&kv.Value)
			typ, num, str = d.Type(), d.Num(), d.Str()
		} else {
			typ, num, str = rawByMethods(&kv.Value)
		}
		key := keySeed(string(kv.Key))
		var fp uint64
		switch typ {
		case attribute.BOOL:
			continue
		case attribute.STRING:
			if !custom {
				fp = h.keyedStr(key, str)
			}
		case attribute.INT64:
			fp = h.keyedNum(key, tagInt64, num)
		case attribute.FLOAT64:
			fp = h.keyedNum(key, tagFloat64, num)
		}
		if fp != 0 && pairs.contains(fp) {
			continue
		}
		if !pairs.contains(g.exemptPrint(key)) {
			return i
		}
	}
	return len(attrs)
}

// after returns the index of the first attribute after attrs[i] that
// admitted does not pass, or len(attrs).
func (g *Guard) after(st *state, attrs []attribute.KeyValue, i int) int {
	return i + 1 + g.admitted(st, attrs[i+1:])
}

// exemptPrint returns the hash that stands in a pair set for every value
// of the exempt key whose seed is key.
func (g *Guard) exemptPrint(key uint64) uint64 { return g.hasher.keyedNum(key, tagExempt, 0) }

// remember records in st's pair set that kv, of the key whose state is ks,
// passes, so that admitted passes it from then on: its fingerprint, or for
// an exempt key the key's exemptPrint. Only pairs whose key is the very
// string ks holds (its alias) are recorded: a hash seeded by that identity
// cannot stand for a different key while st lives.
func (g *Guard) remember(st *state, ks *keyState, kv *attribute.KeyValue) {
	if !sameString(ks.alias, string(kv.Key)) {
		return
	}
	key := keySeed(ks.alias)
	if ks.exempt {
		st.pairs.add(g.exemptPrint(key))
	} else if fp := g.hasher.fingerprint(key, &kv.Value, g.custom); fp != 0 && fp != boolPrint {
		st.pairs.add(fp)
	}
}

// guardedSpan is the read-only view handed downstream when the Guard
// changed something: the original span with its name and attributes
// replaced.
type guardedSpan struct {
	sdktrace.ReadOnlySpan
	name  string
	attrs []attribute.KeyValue
}

// smallView and mediumView are views with room for the copy of the
// attributes in the same allocation, for the usual attribute counts: the
// rewritten span costs one allocation instead of two.
type (
	smallView struct {
		guardedSpan
		buf [10]attribute.KeyValue
	}
	mediumView struct {
		guardedSpan
		buf [20]attribute.KeyValue
	}
)

// newView returns a view of s and its copy of attrs, with room for one
// attribute more: the overflow marker.
func newView(s sdktrace.ReadOnlySpan, attrs []attribute.KeyValue) (*guardedSpan, []attribute.KeyValue) {
	var (
		v   *guardedSpan
		out []attribute.KeyValue
	)
	switch n := len(attrs); {
	case n < len(smallView{}.buf):
		sv := &smallView{}
		v, out = &sv.guardedSpan, sv.buf[:n:n+1]
	case n < len(mediumView{}.buf):
		mv := &mediumView{}
		v, out = &mv.guardedSpan, mv.buf[:n:n+1]
	default:
		v, out = &guardedSpan{}, make([]attribute.KeyValue, n, n+1)
	}
	copy(out, attrs)
	v.ReadOnlySpan = s
	return v, out
}

var _ sdktrace.ReadOnlySpan = (*guardedSpan)(nil)

func (s *guardedSpan) Name() string                     { return s.name }
func (s *guardedSpan) Attributes() []attribute.KeyValue { return s.attrs }

// verdict is what the Guard decided about one value.
type verdict uint8

const (
	pass      verdict = iota // unchanged
	rewritten                // rewritten by a normalizer and admitted
	replaced                 // replaced with OverflowValue
)

// guardName checks one span name of span sp, reading sp's scope only for
// a name not admitted before. A name admitted in any scope passes in all:
// each scope's limit bounds the new names it brings, and the names that
// pass are all admitted ones.
func (g *Guard) guardName(st *state, sp sdktrace.ReadOnlySpan, name string) (string, verdict) {
	custom := g.custom
	var h uint64
	if !custom {
		h = g.hasher.str(name)
		if st.allNames.has(h) {
			return name, pass
		}
	}
	scope := sp.InstrumentationScope().Name
	ks := st.names.lookup(scope)
	if ks == nil {
		ks = st.names.getOrAdd(scope, false, func(scope string) *keyState { return g.newScopeState(st, scope) })
		if ks == nil {
			return g.guardUntrackedName(st, name)
		}
	}
	if name == OverflowValue {
		return name, pass
	}
	var (
		v  string
		vd verdict
	)
	if custom {
		v, vd = g.guardCustom(ks, "", name)
	} else {
		v, vd = g.guardNew(ks, name, h)
	}
	switch vd {
	case rewritten:
		g.normalizedNames.Add(1)
	case replaced:
		g.counterFor(ks, targetSpanName).Add(1)
	}
	return v, vd
}

// guardAttr checks one attribute against the values of its key. Unless
// the verdict is pass, it returns the string value that replaces kv's.
// Spans reach it only for the attributes admitted could not decide; a
// value admitted before still takes a hash and a probe, and new values go
// through guardNew or guardCustom.
func (g *Guard) guardAttr(st *state, kv *attribute.KeyValue) (string, verdict) {
	typ := kv.Value.Type()
	if typ == attribute.BOOL || typ == attribute.EMPTY || kv.Key == "" {
		return "", pass
	}
	key := string(kv.Key)
	ks := st.attrs.lookup(key)
	if ks == nil {
		_, exempt := g.cfg.exempt[key]
		ks = st.attrs.getOrAdd(key, exempt, g.newKeyState)
		if ks == nil {
			return g.guardUntrackedAttr(kv)
		}
	}
	if ks.exempt {
		g.remember(st, ks, kv)
		return "", pass
	}
	if typ != attribute.STRING {
		var h uint64
		if typ == attribute.INT64 {
			h = g.hasher.num(tagInt64, uint64(kv.Value.AsInt64()))
		} else {
			h = g.hasher.value(&kv.Value)
		}
		if ks.set.has(h) || ks.set.admit(h) {
			g.remember(st, ks, kv)
			return "", pass
		}
		g.counterFor(ks, targetAttribute).Add(1)
		return OverflowValue, replaced
	}
	v := kv.Value.AsString()
	if v == OverflowValue {
		return "", pass
	}
	var vd verdict
	if g.custom {
		v, vd = g.guardCustom(ks, key, v)
	} else {
		h := g.hasher.str(v)
		if ks.set.has(h) {
			// Admitted before, as it is or as a normalizer's output;
			// built-in normalization is idempotent, so it needs none.
			g.remember(st, ks, kv)
			return "", pass
		}
		v, vd = g.guardNew(ks, v, h)
	}
	switch vd {
	case pass:
		g.remember(st, ks, kv)
		return "", pass
	case rewritten:
		g.normalizedAttrs.Add(1)
	case replaced:
		g.counterFor(ks, targetAttribute).Add(1)
	}
	return v, vd
}

// guardNew decides about a string value v, with hash h, that ks has not
// admitted, when no custom normalizer is configured: it normalizes v if the
// built-in normalizer applies to ks and admits the result if there is
// room. It returns v itself when the verdict is pass, and otherwise the
// value that replaces it; the caller counts the verdict.
func (g *Guard) guardNew(ks *keyState, v string, h uint64) (string, verdict) {
	if !ks.normalize {
		if ks.set.admit(h) {
			return v, pass
		}
		return OverflowValue, replaced
	}
	// Normalize on the stack: a template the cache holds is used as it
	// is, so the common rewrite of a raw path allocates nothing.
	var buf [256]byte
	if b, changed := appendNormalizedIDs(buf[:0], v); changed {
		return g.admitRewritten(ks, b)
	}
	// v is its own template.
	ok, added := ks.set.check(h)
	if !ok {
		return OverflowValue, replaced
	}
	if added {
		ks.templates.store(v)
	}
	return v, pass
}

// admitRewritten admits the normalized value b for ks and returns the
// string that carries it. b may live on the caller's stack and is not
// kept.
func (g *Guard) admitRewritten(ks *keyState, b []byte) (string, verdict) {
	t := unsafe.String(unsafe.SliceData(b), len(b))
	if c, ok := ks.templates.lookup(t); ok {
		return c, rewritten
	}
	ok, added := ks.set.check(g.hasher.str(t))
	if !ok {
		return OverflowValue, replaced
	}
	if added {
		if c, ok := ks.templates.store(t); ok {
			return c, rewritten
		}
	}
	return string(b), rewritten
}

// guardCustom checks v when custom normalizers are configured: every
// string value goes through them, since they need not map a value to
// itself.
func (g *Guard) guardCustom(ks *keyState, key, v string) (string, verdict) {
	v, changed := g.normalize(ks, key, v)
	if !ks.set.admit(g.hasher.str(v)) {
		return OverflowValue, replaced
	}
	if changed {
		return v, rewritten
	}
	return v, pass
}

// normalize runs the user's normalizers, then the built-in one if it
// applies to ks.
func (g *Guard) normalize(ks *keyState, key, v string) (string, bool) {
	if !ks.normalize && len(g.cfg.normalizers) == 0 {
		return v, false
	}
	changed := false
	for _, n := range g.cfg.normalizers {
		if nv, ok := n(key, v); ok {
			v, changed = nv, true
		}
	}
	if ks.normalize {
		if nv, ok := normalizeIDs(v); ok {
			v, changed = nv, true
		}
	}
	return v, changed
}

func (g *Guard) newKeyState(key string) *keyState {
	alias, key := key, strings.Clone(key)
	if _, ok := g.cfg.exempt[key]; ok {
		return &keyState{alias: alias, name: key, exempt: true}
	}
	limit := g.cfg.valueLimit
	if n, ok := g.cfg.keyLimits[key]; ok {
		limit = n
	}
	_, norm := g.cfg.builtinKeys[key]
	ks := &keyState{alias: alias, name: key, normalize: g.cfg.builtin && norm}
	ks.set.init(limit)
	return ks
}

// newScopeState returns the state of a scope of st, whose names st's
// allNames holds.
func (g *Guard) newScopeState(st *state, scope string) *keyState {
	ks := &keyState{alias: scope, name: strings.Clone(scope), normalize: g.cfg.builtin}
	ks.set.init(g.cfg.spanNameLimit)
	ks.set.shared = st.allNames
	return ks
}

// counterFor returns the counter of values replaced for ks, assigning one
// at the first replacement.
func (g *Guard) counterFor(ks *keyState, t target) *atomic.Uint64 {
	c := ks.counter.Load()
	if c == nil {
		c = g.replaced.forKey(t, ks.name)
		ks.counter.Store(c)
	}
	return &c.n
}

// ForceFlush forwards to the downstream processor, if any.
func (g *Guard) ForceFlush(ctx context.Context) error {
	if g.next == nil || g.stopped.Load() {
		return nil
	}
	if err := g.next.ForceFlush(ctx); err != nil {
		return fmt.Errorf("processor: force flush downstream: %w", err)
	}
	return nil
}

// Shutdown stops the Guard: later OnStart and OnEnd calls are ignored,
// the logging goroutine of WithLogger writes its last report and ends, the
// self-metrics report their final figures at the next collection and are
// then removed, and the downstream processor, if any, is shut down with
// ctx. It returns the downstream's error, and ctx's error if ctx ends
// before the logging goroutine does. Only the first call does anything;
// later calls return nil at once.
func (g *Guard) Shutdown(ctx context.Context) error {
	first := false
	g.shutdownOnce.Do(func() {
		first = true
		g.stopped.Store(true)
		if g.log != nil {
			g.log.stop()
		}
	})
	if !first {
		return nil
	}
	var errs []error
	if g.log != nil {
		if err := g.log.wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("processor: stop logging: %w", err))
		}
	}
	g.metrics.Retire()
	if g.next != nil {
		if err := g.next.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("processor: shut down downstream: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Stats is a snapshot of a Guard's counters and of what it tracks.
type Stats struct {
	// Keys is the number of attribute keys whose values are tracked now,
	// not counting exempt keys.
	Keys int
	// Scopes is the number of instrumentation scopes whose span names are
	// tracked now.
	Scopes int
	// Values is the number of distinct attribute values and span names
	// admitted now, across all keys and scopes.
	Values int

	// ReplacedOverLimit counts span names and attribute values replaced
	// with OverflowValue because their key or scope had reached its limit.
	ReplacedOverLimit uint64
	// ReplacedUntracked counts span names and attribute values replaced
	// with OverflowValue because their key or scope could not be tracked:
	// the MaxKeys bound was reached or the key is longer than 256 bytes.
	ReplacedUntracked uint64
	// Normalized counts span names and attribute values a normalizer
	// rewrote and that were then admitted.
	Normalized uint64
	// MarkedSpans counts spans that received the OverflowKey marker.
	MarkedSpans uint64
	// Resets counts how many times the reset interval cleared the
	// tracked state.
	Resets uint64

	// TopOffenders lists the attribute keys and instrumentation scopes
	// whose values were replaced most, most first, at most
	// TopOffendersLen of them. In report-only mode the counts are of the
	// values that would have been replaced.
	TopOffenders []Offender
}

// TopOffendersLen is the most offenders Stats.TopOffenders lists.
const TopOffendersLen = 10

// Offender is an attribute key or an instrumentation scope whose values
// the Guard replaced, with how many.
type Offender struct {
	// Target is "attribute" for an attribute key or "span.name" for the
	// span names of a scope.
	Target string
	// Key is the attribute key or the scope name. The first 100 keys and
	// scopes to overflow are named; replacements for later ones, and for
	// keys and scopes that could not be tracked, are counted under
	// OverflowValue.
	Key string
	// Reason is "value_limit" when the key or scope had reached its
	// limit, or "key_limit" when it could not be tracked (WithMaxKeys, or
	// a key longer than 256 bytes).
	Reason string
	// Replaced is the number of values replaced.
	Replaced uint64
}

// Stats returns a snapshot of the Guard's counters. The counters are
// cumulative for the life of the Guard; Keys, Scopes and Values describe
// the state since the last reset.
func (g *Guard) Stats() Stats {
	st := g.state.Load()
	s := Stats{
		Keys:        int(st.attrs.count.Load()),
		Scopes:      int(st.names.count.Load()),
		Normalized:  g.normalizedAttrs.Load() + g.normalizedNames.Load(),
		MarkedSpans: g.marked.Load(),
		Resets:      g.resets.Load(),
	}
	s.Values = st.attrs.values() + st.names.values()
	s.ReplacedOverLimit, s.ReplacedUntracked = g.replaced.totals()
	s.TopOffenders = g.replaced.top(TopOffendersLen)
	return s
}
