package template

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kind is what a template file is.
type Kind string

// The kinds Read detects.
const (
	KindCloudFormation Kind = "CloudFormation"
	KindSAM            Kind = "SAM"
	KindCDK            Kind = "CDK"
	KindServerless     Kind = "serverless.yml"
)

// MaxTemplateBytes bounds the file Read accepts: CloudFormation's own limit
// for a template given from S3 is 1 MB; a CDK synth output stays below it.
const MaxTemplateBytes = 4 << 20

// File is a decoded template: its kind, where it was read from (paths in it
// are relative to Dir) and its document as plain values (maps, lists,
// strings, numbers, booleans), short-form tags turned into their long form.
type File struct {
	Kind Kind
	Path string
	Dir  string
	Doc  map[string]any
}

// Read reads a template file, or the one template in a directory: a
// template.yaml/template.yml/template.json, a serverless.yml, or a CDK
// cdk.out directory with one *.template.json.
func Read(path string) (*File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		if path, err = findTemplate(path); err != nil {
			return nil, err
		}
	}
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b, filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Path = path
	f.Dir = filepath.Dir(path)
	return f, nil
}

func readBounded(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxTemplateBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxTemplateBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxTemplateBytes)
	}
	return b, nil
}

func findTemplate(dir string) (string, error) {
	for _, name := range []string{"template.yaml", "template.yml", "template.json", "serverless.yml", "serverless.yaml"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, "cdk.out")} {
		m, _ := filepath.Glob(filepath.Join(d, "*.template.json"))
		switch len(m) {
		case 0:
			continue
		case 1:
			return m[0], nil
		default:
			sort.Strings(m)
			return "", fmt.Errorf("%s: %d stacks (%s): name the one to run", d, len(m), strings.Join(m, ", "))
		}
	}
	return "", fmt.Errorf("%s: no template.yaml, serverless.yml or cdk.out/*.template.json", dir)
}

// Parse decodes template text (YAML or JSON) and detects its kind; name is
// the file's base name, used only to tell a CDK synth output apart.
func Parse(b []byte, name string) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("parsing template: %w", err)
	}
	if root.Kind == 0 {
		return nil, errors.New("parsing template: empty document")
	}
	budget := maxValues
	v, err := decodeNode(&root, 0, &budget)
	if err != nil {
		return nil, fmt.Errorf("parsing template: %w", err)
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("parsing template: the document is not a mapping")
	}
	return &File{Kind: detect(doc, name), Doc: doc}, nil
}

func detect(doc map[string]any, name string) Kind {
	if _, ok := doc["service"]; ok {
		if _, res := doc["Resources"]; !res {
			return KindServerless
		}
	}
	res, _ := doc["Resources"].(map[string]any)
	if strings.HasSuffix(name, ".template.json") {
		return KindCDK
	}
	if p, ok := doc["Parameters"].(map[string]any); ok {
		if _, ok := p["BootstrapVersion"]; ok {
			return KindCDK
		}
	}
	for _, r := range res {
		if m, ok := r.(map[string]any); ok {
			if md, ok := m["Metadata"].(map[string]any); ok {
				if _, ok := md["aws:cdk:path"]; ok {
					return KindCDK
				}
			}
		}
	}
	switch t := doc["Transform"].(type) {
	case string:
		if strings.HasPrefix(t, "AWS::Serverless") {
			return KindSAM
		}
	case []any:
		for _, x := range t {
			if s, _ := x.(string); strings.HasPrefix(s, "AWS::Serverless") {
				return KindSAM
			}
		}
	}
	for _, r := range res {
		if m, ok := r.(map[string]any); ok {
			if t, _ := m["Type"].(string); strings.HasPrefix(t, "AWS::Serverless::") {
				return KindSAM
			}
		}
	}
	return KindCloudFormation
}

// maxDepth bounds nesting, so a hostile document cannot exhaust the stack.
const maxDepth = 200

// maxValues bounds the values a document decodes to, aliases expanded, so
// a few lines of nested aliases cannot expand to billions of values.
const maxValues = 1 << 18

// shortForms maps a YAML tag to the long form of its intrinsic function.
var shortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt", "!Join": "Fn::Join", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!And": "Fn::And",
	"!Or": "Fn::Or", "!Not": "Fn::Not", "!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64",
	"!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue", "!Cidr": "Fn::Cidr",
	"!Transform": "Fn::Transform", "!ToJsonString": "Fn::ToJsonString", "!Length": "Fn::Length",
}

// decodeNode turns a YAML node into plain values, the short forms
// (!Ref X) into their long form ({"Ref": "X"}).
func decodeNode(n *yaml.Node, depth int, budget *int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: nested more than %d levels", n.Line, maxDepth)
	}
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("line %d: the document expands to more than %d values", n.Line, maxValues)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		fn, ok := shortForms[n.Tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		var inner any
		if n.Kind == yaml.ScalarNode {
			inner = n.Value
		} else {
			c := *n
			c.Tag = ""
			v, err := decodeNode(&c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			inner = v
		}
		return map[string]any{fn: inner}, nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return decodeNode(n.Content[0], depth+1, budget)
	case yaml.AliasNode:
		return decodeNode(n.Alias, depth+1, budget)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := decodeNode(c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a mapping key must be a scalar", k.Line)
			}
			if k.Value == "<<" && k.Tag == "!!merge" {
				m, err := decodeNode(v, depth+1, budget)
				if err != nil {
					return nil, err
				}
				mm, ok := m.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("line %d: merge of a non-mapping", k.Line)
				}
				for mk, mv := range mm {
					if _, set := out[mk]; !set {
						out[mk] = mv
					}
				}
				continue
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q appears twice", k.Line, k.Value)
			}
			val, err := decodeNode(v, depth+1, budget)
			if err != nil {
				return nil, err
			}
			out[k.Value] = val
		}
		return out, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
}
