package gateway

import (
	"regexp"
	"sort"
	"strings"

	"github.com/wsgate/wsgate/internal/confcheck"
)

// basePathSegment is one level of an API mapping's path, in the characters
// API Gateway allows there (letters, digits and $-_.+!*'()).
var basePathSegment = regexp.MustCompile(`^[A-Za-z0-9$\-_.+!*'()]+$`)

// maxBasePath is API Gateway's bound on an API mapping's path.
const maxBasePath = 300

// validateBasePaths checks the basePaths map: "/" or "/a" (or "/a/b", a
// mapping of several levels) onto the one stage.
func (c *Config) validateBasePaths(e *confcheck.Errors) {
	for bp, stage := range c.BasePaths {
		p := confcheck.Key("basePaths", bp)
		if stage != c.Stage {
			e.Addf(p, "maps to stage %q, but the stage is %q", stage, c.Stage)
		}
		if bp == "/" {
			continue
		}
		if bp == "/"+c.Stage {
			e.Addf(p, "is the stage's own path, served already")
			continue
		}
		segs, ok := strings.CutPrefix(bp, "/")
		if !ok || len(segs) > maxBasePath {
			e.Addf(p, "want \"/\" or a path such as \"/chat\" of at most %d characters", maxBasePath)
			continue
		}
		for seg := range strings.SplitSeq(segs, "/") {
			if !basePathSegment.MatchString(seg) || seg == "." || seg == ".." {
				e.Addf(p, "segment %q: want letters, digits and $-_.+!*'() only (API Gateway's rule), not . or ..", seg)
				break
			}
		}
	}
}

// mount is where a request's path enters the API: the stage's own path
// (/{stage}, the execute-api form) or a base path mapping (a custom
// domain's form).
type mount struct {
	prefix string // "/dev", "/chat", "" for the "/" mapping
	custom bool   // a base path mapping
}

// mounts lists the stage's path first, then the base paths, longest first,
// so the most specific wins; the "/" mapping, which takes every path,
// comes last.
func mounts(c *Config) []mount {
	out := []mount{{prefix: "/" + c.Stage}}
	var bps []string
	for bp := range c.BasePaths {
		bps = append(bps, strings.TrimSuffix(bp, "/"))
	}
	sort.Slice(bps, func(i, j int) bool { return len(bps[i]) > len(bps[j]) })
	for _, bp := range bps {
		out = append(out, mount{prefix: bp, custom: true})
	}
	return out
}

// mount finds the mount of an escaped request path and the rest after it
// ("" or "/..."); ok is false when no mount takes the path.
func (g *Gateway) mount(path string) (rest string, m mount, ok bool) {
	for _, m := range g.current().mounts {
		if rest, ok := strings.CutPrefix(path, m.prefix); ok && (rest == "" || rest[0] == '/') {
			return rest, m, true
		}
	}
	return "", mount{}, false
}

// Serves reports whether the gateway answers path (an escaped request
// path): the stage's path or a base path, and what is below them.
func (g *Gateway) Serves(path string) bool {
	_, _, ok := g.mount(path)
	return ok
}
