package vtl

// The parsed tree. Nodes render output; exprs compute values. Every node
// and expr keeps the byte offset it starts at, for error messages.

type node interface{ offset() int }

type pos int

func (p pos) offset() int { return int(p) }

// textNode is literal output.
type textNode struct {
	pos
	text string
}

// refNode renders a reference: $x, $!x, ${x.y('a')}.
type refNode struct {
	pos
	ref   *refExpr
	quiet bool   // $!x: null renders as nothing even without QuietNull
	src   string // the reference as written, rendered when it is null
}

// escapedRefNode is \$x: $x as written when it has a value, \$x when
// it is null.
type escapedRefNode struct {
	pos
	ref *refExpr
	src string
}

// setNode is #set($target = value).
type setNode struct {
	pos
	target *refExpr
	value  expr
}

// ifNode is #if/#elseif/#else/#end: conds[i] guards blocks[i]; orElse runs
// when none holds.
type ifNode struct {
	pos
	conds  []expr
	blocks [][]node
	orElse []node
}

// foreachNode is #foreach($name in iter) body #end.
type foreachNode struct {
	pos
	name string
	iter expr
	body []node
}

type breakNode struct{ pos }

type stopNode struct{ pos }

// defineNode is #define($name) body #end: $name becomes a block rendered
// each time it is referenced.
type defineNode struct {
	pos
	name string
	body []node
}

// macroCallNode is #name(args) for a macro defined earlier in the template.
type macroCallNode struct {
	pos
	macro *macro
	args  []expr
}

type macro struct {
	name   string
	params []string
	body   []node
}

type expr interface{ offset() int }

// selector kinds of a reference chain.
const (
	selProperty = iota // .name
	selMethod          // .name(args)
	selIndex           // [expr]
)

type selector struct {
	kind  int
	name  string
	args  []expr
	index expr
}

// refExpr is $name followed by properties, method calls and indexes.
type refExpr struct {
	pos
	name  string
	chain []selector
}

type literal struct {
	pos
	value any
}

// interpolated is a double-quoted string with references or directives in
// it, rendered as a template.
type interpolated struct {
	pos
	body []node
}

type listExpr struct {
	pos
	items []expr
}

type rangeExpr struct {
	pos
	from, to expr
}

type mapExpr struct {
	pos
	keys, values []expr
}

type unaryExpr struct {
	pos
	op string // "!" or "-"
	x  expr
}

type binaryExpr struct {
	pos
	op   string // canonical: || && == != < <= > >= + - * / %
	l, r expr
}
