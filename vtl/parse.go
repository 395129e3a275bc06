package vtl

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxNesting is how deep directives, expressions and string interpolations
// may nest in a template; Parse refuses deeper templates.
const MaxNesting = 64

// MaxTemplateSize is the largest template Parse accepts, in bytes.
// API Gateway caps a mapping template at 300 KB; so does wsgate.
const MaxTemplateSize = 300 << 10

// Template is a parsed template. It is safe for concurrent use.
type Template struct {
	src  string
	body []node
	re   *regexCache
}

// Parse parses src. Errors name the line and column.
func Parse(src string) (*Template, error) {
	if len(src) > MaxTemplateSize {
		return nil, fmt.Errorf("vtl: template is %d bytes, over the limit of %d", len(src), MaxTemplateSize)
	}
	p := &parser{src: src, macros: map[string]*macro{}}
	body, end, err := p.block(0, false)
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, p.errAt(p.i, "#%s without a matching #if, #foreach, #define or #macro", end)
	}
	return &Template{src: src, body: body, re: newRegexCache()}, nil
}

// Source is the template text Parse was given.
func (t *Template) Source() string { return t.src }

type parser struct {
	src    string // the whole template, for positions
	i      int    // offset of the next byte to read in src
	lim    int    // end of the region being parsed (a string literal's body, or len(src))
	depth  int
	macros map[string]*macro
}

// Error is a parse or render error at a place in the template.
type Error struct {
	Line, Column int
	Msg          string
	err          error // ErrLimit for limits
}

func (e *Error) Error() string {
	return fmt.Sprintf("vtl: line %d:%d: %s", e.Line, e.Column, e.Msg)
}

func (e *Error) Unwrap() error { return e.err }

func lineCol(src string, off int) (int, int) {
	if off > len(src) {
		off = len(src)
	}
	line := 1 + strings.Count(src[:off], "\n")
	col := off - strings.LastIndexByte(src[:off], '\n')
	return line, col
}

func (p *parser) errAt(off int, format string, args ...any) error {
	l, c := lineCol(p.src, off)
	return &Error{Line: l, Column: c, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxNesting {
		return p.errAt(p.i, "nested deeper than %d", MaxNesting)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

func (p *parser) eof() bool { return p.i >= p.lim }

func (p *parser) peek(k int) byte {
	if p.i+k < p.lim {
		return p.src[p.i+k]
	}
	return 0
}

func (p *parser) has(s string) bool { return strings.HasPrefix(p.src[p.i:p.lim], s) }

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '-' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ident reads an identifier at p.i: a letter or _, then letters, digits,
// _ and - (Velocity 1.7 allows hyphens; a trailing hyphen is not part of it).
func (p *parser) ident() string {
	if p.eof() || !isIdentStart(p.src[p.i]) {
		return ""
	}
	j := p.i + 1
	for j < p.lim && isIdentChar(p.src[j]) {
		j++
	}
	for p.src[j-1] == '-' {
		j--
	}
	s := p.src[p.i:j]
	p.i = j
	return s
}

// block parses nodes up to the end of the region or a block-ending
// directive (#end, #else, #elseif), which it returns without consuming
// #elseif's condition.
func (p *parser) block(lim int, inner bool) ([]node, string, error) {
	if lim == 0 {
		lim = len(p.src)
	}
	saved := p.lim
	p.lim = lim
	defer func() { p.lim = saved }()
	var nodes []node
	var text strings.Builder
	textStart := p.i
	flush := func() {
		if text.Len() > 0 {
			nodes = append(nodes, &textNode{pos(textStart), text.String()})
			text.Reset()
		}
		textStart = p.i
	}
	for !p.eof() {
		c := p.src[p.i]
		switch c {
		case '\\':
			// A run of backslashes before $ or #: each pair is one
			// backslash; an odd one out makes what follows literal.
			j := p.i
			for j < p.lim && p.src[j] == '\\' {
				j++
			}
			n := j - p.i
			if j < p.lim && (p.src[j] == '$' || p.src[j] == '#') {
				text.WriteString(strings.Repeat(`\`, n/2))
				p.i = j
				if n%2 == 1 {
					// \$x renders $x as written when $x has a value, and
					// \$x (backslash kept) when it is null; \#if renders
					// #if; other text keeps its backslash (Velocity 1.7).
					start := p.i
					if p.src[j] == '$' {
						ref, _, ok, err := p.reference()
						if err != nil || !ok {
							p.i = start + 1
							text.WriteString(`\$`)
							continue
						}
						flush()
						nodes = append(nodes, &escapedRefNode{pos(start), ref, p.src[start:p.i]})
						textStart = p.i
						continue
					}
					p.i++
					name := p.ident()
					if _, isMacro := p.macros[name]; !directives[name] && !isMacro {
						text.WriteByte('\\')
					}
					text.WriteString(p.src[start:p.i])
				}
				continue
			}
			text.WriteString(p.src[p.i:j])
			p.i = j
		case '$':
			start := p.i
			ref, quiet, ok, err := p.reference()
			if err != nil {
				return nil, "", err
			}
			if !ok {
				p.i = start + 1
				text.WriteByte('$')
				continue
			}
			flush()
			nodes = append(nodes, &refNode{pos(start), ref, quiet, p.src[start:p.i]})
			textStart = p.i
		case '#':
			start := p.i
			if p.has("##") {
				for !p.eof() && p.src[p.i] != '\n' {
					p.i++
				}
				if !p.eof() {
					p.i++
				}
				continue
			}
			if p.has("#*") {
				end := strings.Index(p.src[p.i+2:p.lim], "*#")
				if end < 0 {
					return nil, "", p.errAt(start, "comment #* is not closed with *#")
				}
				p.i += 2 + end + 2
				continue
			}
			if p.has("#[[") {
				end := strings.Index(p.src[p.i+3:p.lim], "]]#")
				if end < 0 {
					return nil, "", p.errAt(start, "#[[ is not closed with ]]#")
				}
				text.WriteString(p.src[p.i+3 : p.i+3+end])
				p.i += 3 + end + 3
				continue
			}
			trimmed := text.String()
			n, end, handled, err := p.directive()
			if err != nil {
				return nil, "", err
			}
			if !handled {
				p.i = start + 1
				text.WriteByte('#')
				continue
			}
			if _, isSet := n.(*setNode); isSet {
				// Velocity 1.7 eats the indentation before #set.
				k := len(trimmed)
				for k > 0 && (trimmed[k-1] == ' ' || trimmed[k-1] == '\t') {
					k--
				}
				if k > 0 && trimmed[k-1] == '\n' || k == 0 && lineStart(p.src, start) {
					text.Reset()
					text.WriteString(trimmed[:k])
				}
			}
			flush()
			if end != "" {
				if !inner {
					return nil, "", p.errAt(start, "#%s without a matching #if, #foreach, #define or #macro", end)
				}
				return nodes, end, nil
			}
			if n != nil {
				nodes = append(nodes, n)
			}
			textStart = p.i
		default:
			j := p.i + 1
			for j < p.lim && p.src[j] != '$' && p.src[j] != '#' && p.src[j] != '\\' {
				j++
			}
			text.WriteString(p.src[p.i:j])
			p.i = j
		}
	}
	flush()
	return nodes, "", nil
}

// lineStart reports whether off is at the start of a line.
func lineStart(src string, off int) bool {
	for off > 0 && (src[off-1] == ' ' || src[off-1] == '\t') {
		off--
	}
	return off == 0 || src[off-1] == '\n'
}

// directives are the names Velocity reserves after '#'.
var directives = map[string]bool{
	"set": true, "if": true, "elseif": true, "else": true, "end": true, "foreach": true, "break": true,
	"stop": true, "define": true, "macro": true, "include": true, "parse": true, "evaluate": true,
}

// gobble eats spaces and tabs and one newline after a directive, as
// Velocity 1.7 does, when a newline follows.
func (p *parser) gobble() {
	j := p.i
	for j < p.lim && (p.src[j] == ' ' || p.src[j] == '\t') {
		j++
	}
	if j < p.lim && p.src[j] == '\n' {
		p.i = j + 1
	} else if j+1 < p.lim && p.src[j] == '\r' && p.src[j+1] == '\n' {
		p.i = j + 2
	}
}

// directive parses a directive at '#'. handled is false when the '#' is
// plain text. end names a block-ending directive (end, else, elseif).
func (p *parser) directive() (n node, end string, handled bool, err error) {
	start := p.i
	p.i++
	braced := false
	if p.peek(0) == '{' {
		braced = true
		p.i++
	}
	name := p.ident()
	if name == "" {
		return nil, "", false, nil
	}
	if braced {
		if p.peek(0) != '}' {
			return nil, "", false, nil
		}
		p.i++
	}
	switch name {
	case "end", "else":
		p.gobble()
		return nil, name, true, nil
	case "elseif":
		return nil, name, true, nil
	case "break":
		p.gobble()
		return &breakNode{pos(start)}, "", true, nil
	case "stop":
		p.gobble()
		return &stopNode{pos(start)}, "", true, nil
	case "set":
		n, err := p.set(start)
		return n, "", true, err
	case "if":
		n, err := p.ifBlock(start)
		return n, "", true, err
	case "foreach":
		n, err := p.foreach(start)
		return n, "", true, err
	case "define":
		n, err := p.define(start)
		return n, "", true, err
	case "macro":
		err := p.macroDef(start)
		return nil, "", true, err
	case "include", "parse", "evaluate":
		return nil, "", true, p.errAt(start, "#%s is not supported", name)
	}
	if m, ok := p.macros[name]; ok {
		args, err := p.macroArgs()
		if err != nil {
			return nil, "", true, err
		}
		return &macroCallNode{pos(start), m, args}, "", true, nil
	}
	return nil, "", false, nil
}

func (p *parser) skipSpace() {
	for !p.eof() {
		switch p.src[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) expect(c byte, what string) error {
	p.skipSpace()
	if p.eof() || p.src[p.i] != c {
		return p.errAt(p.i, "expected %q %s", c, what)
	}
	p.i++
	return nil
}

// open reads the '(' after a directive name, spaces allowed before it.
func (p *parser) open(name string) error {
	for !p.eof() && (p.src[p.i] == ' ' || p.src[p.i] == '\t') {
		p.i++
	}
	if p.eof() || p.src[p.i] != '(' {
		return p.errAt(p.i, "expected ( after #%s", name)
	}
	p.i++
	return nil
}

func (p *parser) set(start int) (node, error) {
	if err := p.open("set"); err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.peek(0) != '$' {
		return nil, p.errAt(p.i, "#set needs a reference to assign to")
	}
	at := p.i
	ref, _, ok, err := p.reference()
	if err != nil {
		return nil, err
	}
	if !ok || len(ref.chain) > 0 && ref.chain[len(ref.chain)-1].kind == selMethod {
		return nil, p.errAt(at, "#set needs a reference to assign to")
	}
	if err := p.expect('=', "in #set"); err != nil {
		return nil, err
	}
	v, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.expect(')', "to close #set"); err != nil {
		return nil, err
	}
	p.gobble()
	return &setNode{pos(start), ref, v}, nil
}

func (p *parser) cond(name string) (expr, error) {
	if err := p.open(name); err != nil {
		return nil, err
	}
	e, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.expect(')', "to close #"+name); err != nil {
		return nil, err
	}
	p.gobble()
	return e, nil
}

func (p *parser) ifBlock(start int) (node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	n := &ifNode{pos: pos(start)}
	c, err := p.cond("if")
	if err != nil {
		return nil, err
	}
	for {
		body, end, err := p.block(p.lim, true)
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, c)
		n.blocks = append(n.blocks, body)
		switch end {
		case "end":
			return n, nil
		case "elseif":
			if c, err = p.cond("elseif"); err != nil {
				return nil, err
			}
		case "else":
			body, end, err := p.block(p.lim, true)
			if err != nil {
				return nil, err
			}
			if end != "end" {
				return nil, p.errAt(start, "#if has no #end")
			}
			n.orElse = body
			return n, nil
		default:
			return nil, p.errAt(start, "#if has no #end")
		}
	}
}

// body parses a block that must end with #end.
func (p *parser) body(start int, name string) ([]node, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	body, end, err := p.block(p.lim, true)
	if err != nil {
		return nil, err
	}
	if end != "end" {
		if end == "" {
			return nil, p.errAt(start, "#%s has no #end", name)
		}
		return nil, p.errAt(start, "#%s inside #%s", end, name)
	}
	return body, nil
}

func (p *parser) varName(in string) (string, error) {
	p.skipSpace()
	if p.peek(0) != '$' {
		return "", p.errAt(p.i, "expected a $name in #%s", in)
	}
	p.i++
	if p.peek(0) == '!' {
		p.i++
	}
	braced := p.peek(0) == '{'
	if braced {
		p.i++
	}
	name := p.ident()
	if name == "" {
		return "", p.errAt(p.i, "expected a $name in #%s", in)
	}
	if braced {
		if p.peek(0) != '}' {
			return "", p.errAt(p.i, "expected } in #%s", in)
		}
		p.i++
	}
	return name, nil
}

func (p *parser) foreach(start int) (node, error) {
	if err := p.open("foreach"); err != nil {
		return nil, err
	}
	name, err := p.varName("foreach")
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if !p.has("in") || isIdentChar(p.peek(2)) {
		return nil, p.errAt(p.i, "expected 'in' in #foreach")
	}
	p.i += 2
	iter, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.expect(')', "to close #foreach"); err != nil {
		return nil, err
	}
	p.gobble()
	body, err := p.body(start, "foreach")
	if err != nil {
		return nil, err
	}
	return &foreachNode{pos(start), name, iter, body}, nil
}

func (p *parser) define(start int) (node, error) {
	if err := p.open("define"); err != nil {
		return nil, err
	}
	name, err := p.varName("define")
	if err != nil {
		return nil, err
	}
	if err := p.expect(')', "to close #define"); err != nil {
		return nil, err
	}
	p.gobble()
	body, err := p.body(start, "define")
	if err != nil {
		return nil, err
	}
	return &defineNode{pos(start), name, body}, nil
}

func (p *parser) macroDef(start int) error {
	if err := p.open("macro"); err != nil {
		return err
	}
	p.skipSpace()
	name := p.ident()
	if name == "" {
		return p.errAt(p.i, "expected the macro's name")
	}
	switch name {
	case "set", "if", "elseif", "else", "end", "foreach", "break", "stop", "define", "macro", "include", "parse", "evaluate":
		return p.errAt(p.i, "a macro cannot be called #%s", name)
	}
	m := &macro{name: name}
	for {
		p.skipSpace()
		if p.peek(0) == ',' {
			p.i++
			continue
		}
		if p.peek(0) == ')' {
			p.i++
			break
		}
		v, err := p.varName("macro")
		if err != nil {
			return err
		}
		m.params = append(m.params, v)
	}
	p.gobble()
	// Defined before its body is parsed, so it may call itself (recursion
	// is bounded by Limits.Depth when rendered).
	p.macros[name] = m
	body, err := p.body(start, "macro")
	if err != nil {
		return err
	}
	m.body = body
	return nil
}

func (p *parser) macroArgs() ([]expr, error) {
	save := p.i
	for !p.eof() && (p.src[p.i] == ' ' || p.src[p.i] == '\t') {
		p.i++
	}
	if p.peek(0) != '(' {
		p.i = save
		return nil, nil
	}
	p.i++
	var args []expr
	for {
		p.skipSpace()
		if p.peek(0) == ')' {
			p.i++
			p.gobble()
			return args, nil
		}
		if p.peek(0) == ',' {
			p.i++
			continue
		}
		e, err := p.primary()
		if err != nil {
			return nil, err
		}
		args = append(args, e)
	}
}

// reference parses $x, $!x, ${x}, $x.y.z('a')[0] at p.i. ok is false (and
// p.i undefined) when the text there is not a reference.
func (p *parser) reference() (ref *refExpr, quiet, ok bool, err error) {
	start := p.i
	p.i++
	if p.peek(0) == '!' {
		quiet = true
		p.i++
	}
	braced := p.peek(0) == '{'
	if braced {
		p.i++
	}
	name := p.ident()
	if name == "" {
		return nil, false, false, nil
	}
	if err := p.enter(); err != nil {
		return nil, false, false, err
	}
	defer p.leave()
	ref = &refExpr{pos: pos(start), name: name}
	for !p.eof() {
		c := p.src[p.i]
		if c == '.' && isIdentStart(p.peek(1)) {
			p.i++
			sel := selector{kind: selProperty, name: p.ident()}
			if p.peek(0) == '(' {
				p.i++
				args, err := p.args(')')
				if err != nil {
					return nil, false, false, err
				}
				sel.kind, sel.args = selMethod, args
			}
			ref.chain = append(ref.chain, sel)
			continue
		}
		if c == '[' {
			save := p.i
			p.i++
			idx, err := p.expr()
			if err == nil {
				p.skipSpace()
				if p.peek(0) == ']' {
					p.i++
					ref.chain = append(ref.chain, selector{kind: selIndex, index: idx})
					continue
				}
			}
			p.i = save
		}
		break
	}
	if braced {
		if p.peek(0) != '}' {
			p.i = start
			return nil, false, false, nil
		}
		p.i++
	}
	return ref, quiet, true, nil
}

// args parses comma-separated expressions up to close.
func (p *parser) args(close byte) ([]expr, error) {
	var args []expr
	p.skipSpace()
	if p.peek(0) == close {
		p.i++
		return args, nil
	}
	for {
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		args = append(args, e)
		p.skipSpace()
		switch p.peek(0) {
		case ',':
			p.i++
		case close:
			p.i++
			return args, nil
		default:
			return nil, p.errAt(p.i, "expected , or %q", close)
		}
	}
}

// Expressions, lowest precedence first.

func (p *parser) expr() (expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	return p.binary(0)
}

var levels = [][]string{
	{"||", "or"},
	{"&&", "and"},
	{"==", "!=", "eq", "ne"},
	{"<=", ">=", "<", ">", "le", "ge", "lt", "gt"},
	{"+", "-"},
	{"*", "/", "%"},
}

var canonical = map[string]string{"or": "||", "and": "&&", "eq": "==", "ne": "!=", "le": "<=", "ge": ">=", "lt": "<", "gt": ">"}

// operator reports the operator of precedence level at p.i, if any.
func (p *parser) operator(level int) string {
	p.skipSpace()
	for _, op := range levels[level] {
		if !p.has(op) {
			continue
		}
		if isIdentStart(op[0]) && isIdentChar(p.peek(len(op))) {
			continue // a word operator must end there
		}
		if op == "<" || op == ">" || op == "!" {
			if p.peek(1) == '=' {
				continue
			}
		}
		return op
	}
	return ""
}

func (p *parser) binary(level int) (expr, error) {
	if level == len(levels) {
		return p.unary()
	}
	l, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		at := p.i
		op := p.operator(level)
		if op == "" {
			return l, nil
		}
		p.i += len(op)
		r, err := p.binary(level + 1)
		if err != nil {
			return nil, err
		}
		if c, ok := canonical[op]; ok {
			op = c
		}
		l = &binaryExpr{pos(at), op, l, r}
	}
}

func (p *parser) unary() (expr, error) {
	p.skipSpace()
	at := p.i
	neg := p.peek(0) == '-' && !isDigit(p.peek(1))
	if p.peek(0) == '!' || neg || p.has("not") && !isIdentChar(p.peek(3)) {
		op := "!"
		switch {
		case neg:
			op = "-"
			p.i++
		case p.peek(0) == '!':
			p.i++
		default:
			p.i += 3
		}
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{pos(at), op, x}, nil
	}
	return p.primary()
}

func (p *parser) primary() (expr, error) {
	p.skipSpace()
	at := p.i
	if p.eof() {
		return nil, p.errAt(at, "expected a value")
	}
	c := p.src[p.i]
	switch {
	case c == '$':
		ref, _, ok, err := p.reference()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, p.errAt(at, "expected a reference after $")
		}
		return ref, nil
	case c == '"' || c == '\'':
		return p.stringLit()
	case isDigit(c) || c == '-' && isDigit(p.peek(1)):
		return p.number()
	case c == '(':
		p.i++
		e, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(')', "to close ("); err != nil {
			return nil, err
		}
		return e, nil
	case c == '[':
		return p.listOrRange()
	case c == '{':
		return p.mapLit()
	case isIdentStart(c):
		word := p.ident()
		switch word {
		case "true":
			return &literal{pos(at), true}, nil
		case "false":
			return &literal{pos(at), false}, nil
		case "null":
			return &literal{pos(at), nil}, nil
		}
		return nil, p.errAt(at, "unexpected %q (references start with $)", word)
	}
	return nil, p.errAt(at, "unexpected %q", c)
}

func (p *parser) number() (expr, error) {
	at := p.i
	j := p.i
	if p.src[j] == '-' {
		j++
	}
	for j < p.lim && isDigit(p.src[j]) {
		j++
	}
	float := false
	if j+1 < p.lim && p.src[j] == '.' && isDigit(p.src[j+1]) {
		float = true
		j++
		for j < p.lim && isDigit(p.src[j]) {
			j++
		}
	}
	s := p.src[at:j]
	p.i = j
	if !float {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return &literal{pos(at), n}, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, p.errAt(at, "bad number %q", s)
	}
	return &literal{pos(at), f}, nil
}

// stringLit parses '...' (literal) or "..." (a template). A quote is
// escaped by doubling it; backslashes are kept as they are, as Velocity
// 1.7 does (so "\\'" is the regex \\' that AWS's escapeJavaScript example
// relies on).
func (p *parser) stringLit() (expr, error) {
	at := p.i
	q := p.src[p.i]
	p.i++
	start := p.i
	doubled := false
	for {
		k := strings.IndexByte(p.src[p.i:p.lim], q)
		if k < 0 {
			return nil, p.errAt(at, "string is not closed")
		}
		p.i += k + 1
		if p.peek(0) == q {
			doubled = true
			p.i++
			continue
		}
		break
	}
	end := p.i - 1
	raw := p.src[start:end]
	if q == '\'' || !strings.ContainsAny(raw, "$#\\") {
		if doubled {
			raw = strings.ReplaceAll(raw, string([]byte{q, q}), string(q))
		}
		return &literal{pos(at), raw}, nil
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	after := p.i
	p.i = start
	body, endDir, err := p.block(end, false)
	if err != nil {
		return nil, err
	}
	if endDir != "" {
		return nil, p.errAt(start, "#%s inside a string", endDir)
	}
	p.i = after
	if doubled {
		dq := string([]byte{q, q})
		for _, n := range body {
			if t, ok := n.(*textNode); ok {
				t.text = strings.ReplaceAll(t.text, dq, string(q))
			}
		}
	}
	return &interpolated{pos(at), body}, nil
}

func (p *parser) listOrRange() (expr, error) {
	at := p.i
	p.i++
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	p.skipSpace()
	if p.peek(0) == ']' {
		p.i++
		return &listExpr{pos: pos(at)}, nil
	}
	first, err := p.expr()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.has("..") {
		p.i += 2
		to, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(']', "to close the range"); err != nil {
			return nil, err
		}
		return &rangeExpr{pos(at), first, to}, nil
	}
	items := []expr{first}
	for {
		p.skipSpace()
		switch p.peek(0) {
		case ']':
			p.i++
			return &listExpr{pos(at), items}, nil
		case ',':
			p.i++
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			items = append(items, e)
		default:
			return nil, p.errAt(p.i, "expected , or ] in the list")
		}
	}
}

func (p *parser) mapLit() (expr, error) {
	at := p.i
	p.i++
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	m := &mapExpr{pos: pos(at)}
	p.skipSpace()
	if p.peek(0) == '}' {
		p.i++
		return m, nil
	}
	for {
		k, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(':', "in the map"); err != nil {
			return nil, err
		}
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		m.keys = append(m.keys, k)
		m.values = append(m.values, v)
		p.skipSpace()
		switch p.peek(0) {
		case '}':
			p.i++
			return m, nil
		case ',':
			p.i++
		default:
			return nil, p.errAt(p.i, "expected , or } in the map")
		}
	}
}
