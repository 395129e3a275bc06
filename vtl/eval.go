package vtl

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrLimit is wrapped by every error that a limit of Limits caused.
var ErrLimit = errors.New("limit exceeded")

// Limits bound one render. A zero field takes its default.
type Limits struct {
	// Steps is how many evaluation steps (a node, an expression, a loop
	// iteration, a method call) one render may take. Default 1,000,000.
	Steps int
	// Iterations is how many #foreach iterations one render may run in
	// all. Default 10,000.
	Iterations int
	// Output is the largest output, in bytes. Default 1 MiB.
	Output int
	// Alloc is how many bytes of strings and collection entries (16 bytes
	// each) one render may create in all, output excluded. Default 8 MiB.
	Alloc int
	// Depth is how deep #define blocks and macros may call each other and
	// how deeply nested a collection may be rendered or compared.
	// Default 64.
	Depth int
}

func (l Limits) withDefaults() Limits {
	if l.Steps <= 0 {
		l.Steps = 1_000_000
	}
	if l.Iterations <= 0 {
		l.Iterations = 10_000
	}
	if l.Output <= 0 {
		l.Output = 1 << 20
	}
	if l.Alloc <= 0 {
		l.Alloc = 8 << 20
	}
	if l.Depth <= 0 {
		l.Depth = 64
	}
	return l
}

// Options are a render's settings.
type Options struct {
	Limits Limits
	// QuietNull renders a null reference as nothing, as API Gateway does.
	// Without it a null reference renders as written ($x), as Velocity
	// does, unless written $!x.
	QuietNull bool
}

// errBreak and errStop unwind #break and #stop.
var (
	errBreak = errors.New("#break")
	errStop  = errors.New("#stop")
)

type state struct {
	ctx   context.Context
	t     *Template
	vars  map[string]any
	out   []byte
	lim   Limits
	quiet bool

	steps, iters, alloc, depth int
	at                         int // offset of the node being evaluated, for errors
}

// Render renders the template with vars (converted with Value). The
// caller's maps are not changed: #set writes to a copy of the top level.
func (t *Template) Render(ctx context.Context, vars map[string]any, opts Options) ([]byte, error) {
	s := &state{ctx: ctx, t: t, lim: opts.Limits.withDefaults(), quiet: opts.QuietNull}
	s.vars = make(map[string]any, len(vars)+4)
	for k, v := range vars {
		s.vars[k] = Value(v)
	}
	s.out = make([]byte, 0, min(len(t.src)+256, s.lim.Output))
	err := s.nodes(t.body)
	if errors.Is(err, errStop) || errors.Is(err, errBreak) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	return s.out, nil
}

func (s *state) errorf(format string, args ...any) error {
	l, c := lineCol(s.t.src, s.at)
	return &Error{Line: l, Column: c, Msg: fmt.Sprintf(format, args...)}
}

func (s *state) limitErr(format string, args ...any) error {
	l, c := lineCol(s.t.src, s.at)
	return &Error{Line: l, Column: c, Msg: fmt.Sprintf(format, args...), err: ErrLimit}
}

func (s *state) step() error {
	s.steps++
	if s.steps > s.lim.Steps {
		return s.limitErr("more than %d evaluation steps", s.lim.Steps)
	}
	if s.steps&1023 == 0 && s.ctx != nil {
		if err := s.ctx.Err(); err != nil {
			return s.errorf("%v", err)
		}
	}
	return nil
}

// charge counts n bytes of new values against Limits.Alloc.
func (s *state) charge(n int) error {
	s.alloc += n
	if s.alloc > s.lim.Alloc {
		return s.limitErr("values took more than %d bytes", s.lim.Alloc)
	}
	return nil
}

func (s *state) write(b string) error {
	if len(s.out)+len(b) > s.lim.Output {
		return s.limitErr("output is over %d bytes", s.lim.Output)
	}
	s.out = append(s.out, b...)
	return nil
}

func (s *state) nodes(ns []node) error {
	for _, n := range ns {
		if err := s.node(n); err != nil {
			return err
		}
	}
	return nil
}

func (s *state) node(n node) error {
	if err := s.step(); err != nil {
		return err
	}
	s.at = n.offset()
	switch n := n.(type) {
	case *textNode:
		return s.write(n.text)
	case *refNode:
		v, err := s.ref(n.ref)
		if err != nil {
			return err
		}
		if v == nil {
			if n.quiet || s.quiet {
				return nil
			}
			return s.write(n.src)
		}
		return s.writeValue(v)
	case *escapedRefNode:
		v, err := s.ref(n.ref)
		if err != nil {
			return err
		}
		if v == nil {
			return s.write(`\` + n.src)
		}
		return s.write(n.src)
	case *setNode:
		v, err := s.eval(n.value)
		if err != nil {
			return err
		}
		s.at = n.offset()
		return s.assign(n.target, v)
	case *ifNode:
		for i, c := range n.conds {
			v, err := s.eval(c)
			if err != nil {
				return err
			}
			if truthy(v) {
				return s.nodes(n.blocks[i])
			}
		}
		return s.nodes(n.orElse)
	case *foreachNode:
		return s.foreach(n)
	case *breakNode:
		return errBreak
	case *stopNode:
		return errStop
	case *defineNode:
		s.vars[n.name] = &block{n.body}
		return nil
	case *macroCallNode:
		return s.callMacro(n)
	}
	return s.errorf("unknown node %T", n)
}

// writeValue renders v to the output.
func (s *state) writeValue(v any) error {
	if b, ok := v.(*block); ok {
		return s.renderBlock(b)
	}
	str, err := s.str(v)
	if err != nil {
		return err
	}
	return s.write(str)
}

func (s *state) renderBlock(b *block) error {
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > s.lim.Depth {
		return s.limitErr("#define blocks and macros nested deeper than %d", s.lim.Depth)
	}
	err := s.nodes(b.body)
	if errors.Is(err, errBreak) {
		return nil
	}
	return err
}

func (s *state) callMacro(n *macroCallNode) error {
	m := n.macro
	saved := make([]any, len(m.params))
	had := make([]bool, len(m.params))
	for i, p := range m.params {
		var v any
		if i < len(n.args) {
			var err error
			if v, err = s.eval(n.args[i]); err != nil {
				return err
			}
		}
		saved[i], had[i] = s.vars[p]
		s.vars[p] = v
	}
	err := s.renderBlock(&block{m.body})
	for i, p := range m.params {
		if had[i] {
			s.vars[p] = saved[i]
		} else {
			delete(s.vars, p)
		}
	}
	return err
}

// foreachScope is $foreach inside a loop.
type foreachScope struct {
	index, count int
	hasNext      bool
	parent       any
}

func (f *foreachScope) Property(name string) (any, bool) {
	switch name {
	case "index":
		return int64(f.index), true
	case "count":
		return int64(f.count), true
	case "hasNext":
		return f.hasNext, true
	case "first":
		return f.index == 0, true
	case "last":
		return !f.hasNext, true
	case "parent":
		return f.parent, f.parent != nil
	}
	return nil, false
}

func (f *foreachScope) Call(name string, args []any) (any, bool, error) {
	switch name {
	case "getIndex", "getCount", "getHasNext", "isFirst", "isLast", "getFirst", "getLast", "getParent":
		n := strings.TrimPrefix(strings.TrimPrefix(name, "get"), "is")
		v, ok := f.Property(strings.ToLower(n[:1]) + n[1:])
		return v, ok, nil
	case "hasNext":
		return f.hasNext, true, nil
	}
	return nil, false, nil
}

func (s *state) foreach(n *foreachNode) error {
	v, err := s.eval(n.iter)
	if err != nil {
		return err
	}
	var items []any
	switch x := v.(type) {
	case *List:
		items = x.Items
	case *Map:
		items = make([]any, 0, x.Len())
		for _, k := range x.keys {
			items = append(items, x.vals[k])
		}
	default:
		return nil // Velocity skips what it cannot iterate
	}
	savedVar, hadVar := s.vars[n.name]
	savedScope, hadScope := s.vars["foreach"]
	savedCount, hadCount := s.vars["velocityCount"]
	scope := &foreachScope{parent: savedScope}
	s.vars["foreach"] = scope
	defer func() {
		restore(s.vars, n.name, savedVar, hadVar)
		restore(s.vars, "foreach", savedScope, hadScope)
		restore(s.vars, "velocityCount", savedCount, hadCount)
	}()
	// The list may grow while it is iterated ($list.add in the body);
	// Java would throw, we iterate what was there when the loop started.
	items = items[:len(items):len(items)]
	for i, item := range items {
		s.iters++
		if s.iters > s.lim.Iterations {
			s.at = n.offset()
			return s.limitErr("more than %d #foreach iterations", s.lim.Iterations)
		}
		scope.index, scope.count, scope.hasNext = i, i+1, i+1 < len(items)
		s.vars[n.name] = item
		s.vars["velocityCount"] = int64(i + 1)
		if err := s.nodes(n.body); err != nil {
			if errors.Is(err, errBreak) {
				return nil
			}
			return err
		}
	}
	return nil
}

func restore(vars map[string]any, k string, v any, had bool) {
	if had {
		vars[k] = v
	} else {
		delete(vars, k)
	}
}

// assign runs #set: a null value removes a plain variable (Velocity 1.7
// leaves it unchanged when the right side is null; we follow 1.7).
func (s *state) assign(ref *refExpr, v any) error {
	if len(ref.chain) == 0 {
		if v == nil {
			return nil
		}
		s.vars[ref.name] = v
		return nil
	}
	// Evaluate all but the last selector, then set through it.
	obj, ok := s.vars[ref.name]
	if !ok {
		return nil
	}
	for _, sel := range ref.chain[:len(ref.chain)-1] {
		var err error
		if obj, err = s.selector(obj, sel); err != nil {
			return err
		}
		if obj == nil {
			return nil
		}
	}
	last := ref.chain[len(ref.chain)-1]
	var key any = last.name
	if last.kind == selIndex {
		var err error
		if key, err = s.eval(last.index); err != nil {
			return err
		}
	}
	switch o := obj.(type) {
	case *Map:
		k, err := s.str(key)
		if err != nil {
			return err
		}
		if _, exists := o.vals[k]; !exists {
			if err := s.charge(16 + len(k)); err != nil {
				return err
			}
		}
		o.Put(k, v)
	case *List:
		i, ok := key.(int64)
		if !ok || i < 0 || i >= int64(len(o.Items)) {
			return s.errorf("index %v out of bounds for a list of %d", key, len(o.Items))
		}
		o.Items[i] = v
	}
	return nil
}

func (s *state) ref(r *refExpr) (any, error) {
	v := s.vars[r.name]
	for _, sel := range r.chain {
		if v == nil {
			return nil, nil
		}
		var err error
		if v, err = s.selector(v, sel); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (s *state) selector(v any, sel selector) (any, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	switch sel.kind {
	case selProperty:
		return s.property(v, sel.name)
	case selIndex:
		idx, err := s.eval(sel.index)
		if err != nil {
			return nil, err
		}
		return s.index(v, idx)
	}
	args := make([]any, len(sel.args))
	for i, a := range sel.args {
		var err error
		if args[i], err = s.eval(a); err != nil {
			return nil, err
		}
	}
	return s.call(v, sel.name, args)
}

// property is $v.name: a map's entry, an Object's property, else the
// getter Velocity would try (getName, isName).
func (s *state) property(v any, name string) (any, error) {
	switch o := v.(type) {
	case *Map:
		return o.vals[name], nil
	case Object:
		if p, ok := o.Property(name); ok {
			return p, nil
		}
	}
	up := strings.ToUpper(name[:1]) + name[1:]
	for _, m := range [...]string{"get" + up, "is" + up} {
		r, err := s.call(v, m, nil)
		if err != nil || r != nil {
			return r, err
		}
	}
	return nil, nil
}

func (s *state) index(v, idx any) (any, error) {
	switch o := v.(type) {
	case *List:
		i, ok := idx.(int64)
		if !ok {
			return nil, nil
		}
		if i < 0 {
			i += int64(len(o.Items)) // Velocity 2 allows $list[-1]
		}
		if i < 0 || i >= int64(len(o.Items)) {
			return nil, s.errorf("index %d out of bounds for a list of %d", idx, len(o.Items))
		}
		return o.Items[i], nil
	case *Map:
		k, err := s.str(idx)
		if err != nil {
			return nil, err
		}
		return o.vals[k], nil
	case Object:
		if k, ok := idx.(string); ok {
			p, _ := o.Property(k)
			return p, nil
		}
	}
	return nil, nil
}

func (s *state) eval(e expr) (any, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	switch e := e.(type) {
	case *literal:
		return e.value, nil
	case *refExpr:
		return s.ref(e)
	case *interpolated:
		return s.interpolate(e)
	case *listExpr:
		if err := s.charge(16 * len(e.items)); err != nil {
			return nil, err
		}
		l := &List{Items: make([]any, len(e.items))}
		for i, it := range e.items {
			v, err := s.eval(it)
			if err != nil {
				return nil, err
			}
			l.Items[i] = v
		}
		return l, nil
	case *rangeExpr:
		return s.rangeList(e)
	case *mapExpr:
		m := NewMap(len(e.keys))
		for i := range e.keys {
			k, err := s.eval(e.keys[i])
			if err != nil {
				return nil, err
			}
			ks, err := s.str(k)
			if err != nil {
				return nil, err
			}
			v, err := s.eval(e.values[i])
			if err != nil {
				return nil, err
			}
			if err := s.charge(16 + len(ks)); err != nil {
				return nil, err
			}
			m.Put(ks, v)
		}
		return m, nil
	case *unaryExpr:
		x, err := s.eval(e.x)
		if err != nil {
			return nil, err
		}
		if e.op == "!" {
			return !truthy(x), nil
		}
		switch n := x.(type) {
		case int64:
			return -n, nil
		case float64:
			return -n, nil
		}
		return nil, nil
	case *binaryExpr:
		return s.binary(e)
	}
	return nil, s.errorf("unknown expression %T", e)
}

func (s *state) interpolate(e *interpolated) (any, error) {
	// Render the string's body into the output buffer, then cut it off:
	// one buffer, and the output limit bounds the string too.
	mark := len(s.out)
	err := s.nodes(e.body)
	str := string(s.out[mark:])
	s.out = s.out[:mark]
	if err != nil {
		return nil, err
	}
	if err := s.charge(len(str)); err != nil {
		return nil, err
	}
	return str, nil
}

func (s *state) rangeList(e *rangeExpr) (any, error) {
	from, err := s.eval(e.from)
	if err != nil {
		return nil, err
	}
	to, err := s.eval(e.to)
	if err != nil {
		return nil, err
	}
	a, ok1 := toInt(from)
	b, ok2 := toInt(to)
	if !ok1 || !ok2 {
		return nil, nil
	}
	n := b - a
	if n < 0 {
		n = -n
	}
	n++
	if n > int64(s.lim.Iterations) || n < 0 {
		return nil, s.limitErr("range [%d..%d] is longer than %d", a, b, s.lim.Iterations)
	}
	if err := s.charge(16 * int(n)); err != nil {
		return nil, err
	}
	l := &List{Items: make([]any, 0, n)}
	step := int64(1)
	if b < a {
		step = -1
	}
	for i := a; ; i += step {
		l.Items = append(l.Items, i)
		if i == b {
			break
		}
	}
	return l, nil
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x >= math.MinInt64 && x <= math.MaxInt64 {
			return int64(x), true
		}
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

func (s *state) binary(e *binaryExpr) (any, error) {
	l, err := s.eval(e.l)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "&&":
		if !truthy(l) {
			return false, nil
		}
		r, err := s.eval(e.r)
		return truthy(r), err
	case "||":
		if truthy(l) {
			return true, nil
		}
		r, err := s.eval(e.r)
		return truthy(r), err
	}
	r, err := s.eval(e.r)
	if err != nil {
		return nil, err
	}
	s.at = e.offset()
	switch e.op {
	case "==", "!=":
		eq, err := s.equal(l, r)
		return eq == (e.op == "=="), err
	case "<", "<=", ">", ">=":
		c, ok := compare(l, r)
		if !ok {
			return false, nil // Velocity logs and answers false
		}
		switch e.op {
		case "<":
			return c < 0, nil
		case "<=":
			return c <= 0, nil
		case ">":
			return c > 0, nil
		}
		return c >= 0, nil
	case "+":
		if ls, ok := l.(string); ok {
			return s.concat(ls, r)
		}
		if rs, ok := r.(string); ok {
			lstr, err := s.str(l)
			if err != nil || l == nil {
				return nil, err
			}
			return s.concat(lstr, rs)
		}
	}
	return arith(e.op, l, r), nil
}

func (s *state) concat(l string, r any) (any, error) {
	if r == nil {
		return nil, nil
	}
	rs, err := s.str(r)
	if err != nil {
		return nil, err
	}
	if err := s.charge(len(l) + len(rs)); err != nil {
		return nil, err
	}
	return l + rs, nil
}

// compare orders numbers by value and strings lexically (Java's
// compareTo); other pairs do not compare.
func compare(a, b any) (int, bool) {
	if x, ok := a.(int64); ok {
		if y, ok := b.(int64); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
	}
	if x, ok := number(a); ok {
		if y, ok := number(b); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	}
	return 0, false
}

// arith is + - * / % on numbers: integers stay integers (division
// truncates) unless they overflow; a division by zero or a non-number
// gives null, as Velocity's does.
func arith(op string, l, r any) any {
	x, xi := l.(int64)
	y, yi := r.(int64)
	if xi && yi {
		switch op {
		case "+":
			if s := x + y; (s > x) == (y > 0) {
				return s
			}
		case "-":
			if d := x - y; (d < x) == (y > 0) {
				return d
			}
		case "*":
			if x == 0 || y == 0 {
				return int64(0)
			}
			if p := x * y; p/y == x && !(x == -1 && y == math.MinInt64) && !(y == -1 && x == math.MinInt64) {
				return p
			}
		case "/":
			if y == 0 || x == math.MinInt64 && y == -1 {
				return nil
			}
			return x / y
		case "%":
			if y == 0 || y == -1 {
				if y == -1 {
					return int64(0)
				}
				return nil
			}
			return x % y
		}
	}
	a, ok1 := number(l)
	b, ok2 := number(r)
	if !ok1 || !ok2 {
		return nil
	}
	switch op {
	case "+":
		return a + b
	case "-":
		return a - b
	case "*":
		return a * b
	case "/":
		if b == 0 {
			return nil
		}
		return a / b
	case "%":
		if b == 0 {
			return nil
		}
		return math.Mod(a, b)
	}
	return nil
}
