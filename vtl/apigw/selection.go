package apigw

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/wsgate/wsgate/vtl"
)

// Selection is a parsed template or integration response selection
// expression of a WebSocket API: static text, "\$" for a literal '$'
// ("\$default"), $request.body.PATH or ${request.body.PATH} (a JSONPath
// member path into the message), ${integration.response.statuscode},
// ${integration.response.header.NAME},
// ${integration.response.multivalueheader.NAME} and
// ${integration.response.body.PATH} (a member path into the backend's
// answer).
type Selection struct {
	parts []selPart
	src   string
}

type selPart struct {
	text     string // static text when both are empty
	path     string // JSONPath for request.body
	respPath string // JSONPath for integration.response.body
	status   bool   // integration.response.statuscode
	header   string // integration.response.header.NAME
	multi    bool   // multivalueheader: every value, comma-separated
	isVar    bool
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
		case strings.HasPrefix(name, "integration.response.body."), name == "integration.response.body":
			p.respPath = "$" + strings.TrimPrefix(name, "integration.response.body")
			if _, err := compilePath(p.respPath); err != nil {
				return nil, fmt.Errorf("selection expression %q: %v", s, err)
			}
		case strings.HasPrefix(name, "integration.response.header."):
			p.header = strings.TrimPrefix(name, "integration.response.header.")
		case strings.HasPrefix(name, "integration.response.multivalueheader."):
			p.header, p.multi = strings.TrimPrefix(name, "integration.response.multivalueheader."), true
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
	return sel.EvalResult(r, &Result{Status: status})
}

// Result is an integration's answer, for the integration.response
// variables of a selection expression.
type Result struct {
	Status string
	Header http.Header
	Body   string
}

// EvalResult evaluates the expression on r's body and the integration's
// answer res. Absent headers and body paths give "".
func (sel *Selection) EvalResult(r *Request, res *Result) string {
	if len(sel.parts) == 1 && !sel.parts[0].isVar {
		return sel.parts[0].text
	}
	var b strings.Builder
	in := &Input{req: r}
	var out *Input
	write := func(in *Input, path string) {
		if v, found, err := in.lookup(path); err == nil && found && v != nil {
			b.WriteString(vtl.Text(v))
		}
	}
	for _, p := range sel.parts {
		switch {
		case !p.isVar:
			b.WriteString(p.text)
		case p.status:
			b.WriteString(res.Status)
		case p.header != "" && p.multi:
			b.WriteString(strings.Join(res.Header.Values(p.header), ","))
		case p.header != "":
			b.WriteString(res.Header.Get(p.header))
		case p.respPath != "":
			if out == nil {
				out = &Input{req: &Request{Body: res.Body}}
			}
			write(out, p.respPath)
		case p.path != "":
			write(in, p.path)
		}
	}
	return b.String()
}

// String is the expression as written.
func (sel *Selection) String() string { return sel.src }
