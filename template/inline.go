package template

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// InlineDir is where a function's inline code is written, relative to the
// template's directory: in wsgate's state directory beside it, one
// directory per function.
const InlineDir = ".wsgate/inline"

// InlineCode is a function's code written in the template (SAM
// InlineCode, Lambda Code.ZipFile). Lambda puts it in a file named index
// with the runtime's extension, so the handler is index.<function>;
// WriteInlineCode puts it there, in the directory the function's codeUri
// names.
type InlineCode struct {
	// Function is the config's name of the function.
	Function string
	// Path is the template property the code came from.
	Path string
	// Dir is the function's codeUri, as in the config: relative to the
	// template's directory unless Options.BaseDir made it absolute.
	Dir string
	// File is index.js (Node.js) or index.py (Python).
	File string
	// Code is the source.
	Code string
}

// inlineFile is the file Lambda names inline code for runtime, "" for a
// runtime that takes no inline code. CloudFormation: "places it in a file
// named index", with the runtime's extension; for Node.js that is
// index.js (CommonJS), also on the ES module capable runtimes.
func inlineFile(runtime string) string {
	switch {
	case strings.HasPrefix(runtime, "nodejs"):
		return "index.js"
	case strings.HasPrefix(runtime, "python"):
		return "index.py"
	}
	return ""
}

// inlineCode reads a function's inline code, if it has some: SAM's
// InlineCode or Lambda's Code.ZipFile, in any intrinsic form (Fn::Join of
// lines, Fn::Sub). ok is false when the function has none.
func (t *translator) inlineCode(res *resource, props map[string]any, fnName, runtime, handler string) (dir string, ok bool) {
	path := "Resources." + res.ID + ".Properties."
	var v any
	if res.Type == "AWS::Serverless::Function" {
		v, ok = props["InlineCode"]
		path += "InlineCode"
		if _, both := res.Properties["CodeUri"]; ok && both {
			t.fail(errAt(path, "InlineCode and CodeUri are exclusive"))
			return "", true
		}
	} else if code, isMap := props["Code"].(map[string]any); isMap {
		v, ok = code["ZipFile"]
		path += "Code.ZipFile"
	}
	if !ok {
		return "", false
	}
	src, err := t.r.resolveString(v, path)
	if err != nil {
		t.fail(err)
		return "", true
	}
	file := inlineFile(runtime)
	if file == "" {
		t.fail(errAt(path, "inline code is for Node.js and Python runtimes only, not %q (as on Lambda)", runtime))
		return "", true
	}
	if mod, _, _ := strings.Cut(handler, "."); mod != "index" {
		t.fail(errAt("Resources."+res.ID+".Properties.Handler", "%q: inline code is in %s, so the handler is index.<function>", handler, file))
		return "", true
	}
	dir = filepath.Join(InlineDir, fnName)
	if t.opts.BaseDir != "" {
		dir = filepath.Join(t.opts.BaseDir, dir)
	}
	t.out.Inline = append(t.out.Inline, InlineCode{Function: fnName, Path: path, Dir: dir, File: file, Code: src})
	return dir, true
}

// WriteInlineCode writes each function's inline code to its directory,
// base (the template's directory) joined to relative ones. A file that
// already holds the code is left alone, so a function's processes are not
// restarted by `serve --watch` for nothing; a changed one is replaced
// atomically.
func (r *Result) WriteInlineCode(base string) error {
	for _, in := range r.Inline {
		dir := in.Dir
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		if err := writeIfChanged(dir, in.File, []byte(in.Code)); err != nil {
			return fmt.Errorf("writing the inline code of %s (%s): %w", in.Function, in.Path, err)
		}
	}
	return nil
}

func writeIfChanged(dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// Written whole, then renamed: a function starting meanwhile reads
	// the old code or the new, never half of it.
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
