package apigw

import (
	"fmt"
	"strings"

	"github.com/wsgate/wsgate/vtl"
)

// Selection is a parsed template or integration response selection
// expression of a WebSocket API: static text, "\$" for a literal '$'
// ("\$default"), $request.body.PATH or ${request.body.PATH} (a JSONPath
// member path into the message), and ${integration.response.statuscode}.
type Selection struct {
	parts []selPart
	src   string
}

type selPart struct {
	text   string // static text when both are empty
	path   string // JSONPath for request.body
	status bool   // integration.response.statuscode
	header string // integration.response.header.NAME: empty for now (MOCK has no headers)
	isVar  bool
}

// ParseSelection parses a selection expression.
func ParseSelection(s string) (*Selection, error) {
	sel := &Selection{src: s}
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			sel.parts = append(sel.parts, selPart{text: text.String()})
			text.Reset()
		}
	}
	for i := 0; i < len(s); {
		var name string
		switch {
		case strings.HasPrefix(s[i:], `\$`):
			text.WriteByte('$')
			i += 2
			continue
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("selection expression %q: ${ is not closed", s)
			}
			name = s[i+2 : i+end]
			i += end + 1
		case s[i] == '$':
			j := i + 1
			for j < len(s) && (isNameByte(s[j])) {
				j++
			}
			name = s[i+1 : j]
			i = j
		default:
			text.WriteByte(s[i])
			i++
			continue
		}
		p := selPart{isVar: true}
		switch {
		case strings.HasPrefix(name, "request.body."), name == "request.body":
			p.path = "$" + strings.TrimPrefix(name, "request.body")
			if _, err := compilePath(p.path); err != nil {
				return nil, fmt.Errorf("selection expression %q: %v", s, err)
			}
		case name == "integration.response.statuscode":
			p.status = true
		case strings.HasPrefix(name, "integration.response.header.") || strings.HasPrefix(name, "integration.response.multivalueheader."):
			p.header = name
		default:
			return nil, fmt.Errorf("selection expression %q: unsupported variable $%s (write \\$ for a literal '$')", s, name)
		}
		flush()
		sel.parts = append(sel.parts, p)
	}
	flush()
	return sel, nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '[' || c == ']'
}

// Eval evaluates the expression on r's body and an integration response
// status. A path that matches nothing gives ""; strings give their text,
// other values their Java text ({k=v}, [a, b], 1.5).
func (sel *Selection) Eval(r *Request, status string) string {
	if len(sel.parts) == 1 && !sel.parts[0].isVar {
		return sel.parts[0].text
	}
	var b strings.Builder
	in := &Input{req: r}
	for _, p := range sel.parts {
		switch {
		case !p.isVar:
			b.WriteString(p.text)
		case p.status:
			b.WriteString(status)
		case p.path != "":
			if v, found, err := in.lookup(p.path); err == nil && found && v != nil {
				b.WriteString(vtl.Text(v))
			}
		}
	}
	return b.String()
}

// String is the expression as written.
func (sel *Selection) String() string { return sel.src }
