package vtl_test

import (
	"context"
	"fmt"

	"github.com/wsgate/wsgate/vtl"
)

// A template rendered with plain Go values: maps become Java-like maps,
// slices lists.
func Example() {
	t, err := vtl.Parse(`#foreach($p in $pets)$p.name.toUpperCase()#if($foreach.hasNext), #end#end ($pets.size())`)
	if err != nil {
		panic(err)
	}
	out, err := t.Render(context.Background(), map[string]any{
		"pets": []any{map[string]any{"name": "rex"}, map[string]any{"name": "tom"}},
	}, vtl.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	// Output: REX, TOM (2)
}
