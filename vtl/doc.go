// Package vtl is a Velocity Template Language engine with the semantics
// API Gateway's mapping templates have: Velocity 1.7 with Java's String,
// List and Map methods, null references rendered as nothing, and limits on
// everything a template or its input can grow.
//
// A template is parsed once (Parse) and rendered any number of times, from
// any number of goroutines at once (Template.Render): the parsed tree is
// never written after Parse, and each render has its own variables.
//
// Values seen by templates are Go values of a few kinds: nil (Java null),
// bool, int64, float64 (Java Double, rendered as Java renders it), string,
// *List, *Map (insertion-ordered, string keys) and host objects that
// implement Object (the API Gateway variables in package vtl/apigw are
// such objects). Render converts the variables it is given with Value, so a
// caller can pass plain Go maps, slices and numbers.
//
// Rendering is bounded (Limits): evaluation steps, loop iterations, output
// bytes, bytes allocated for values, and nesting depth. Going past one stops
// the render with an error that wraps ErrLimit, so a hostile template or
// input costs a known amount of CPU and memory.
package vtl
