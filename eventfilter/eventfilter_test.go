package eventfilter

import (
	"encoding/json"
	"strings"
	"testing"
)

// ddbRecord is the DynamoDB stream record of Lambda's "Using event
// filtering with a DynamoDB event source" page.
const ddbRecord = `{
  "eventID": "1", "eventVersion": "1.0", "eventName": "INSERT",
  "dynamodb": {
    "ApproximateCreationDateTime": "1678831218.0",
    "Keys": { "CustomerName": { "S": "AnyCompany Industries" } },
    "NewImage": {
      "AccountManager": { "S": "Pat Candella" },
      "PaymentTerms": { "S": "60 days" },
      "CustomerName": { "S": "AnyCompany Industries" },
      "Balance": { "N": "101" },
      "Active": { "BOOL": true },
      "Tags": { "SS": ["gold", "eu"] }
    },
    "SequenceNumber": "111", "SizeBytes": 26, "StreamViewType": "NEW_IMAGE"
  }
}`

// event is shaped for the rows of Lambda's filter rule syntax table.
const event = `{
  "UserID": null, "LastName": "", "Name": "Alice", "Location": "New York", "Day": "Monday",
  "PaymentType": "Credit", "Weather": "Sunny", "Price": 100, "ProductName": "Widget",
  "Region": "us-east-1", "FileName": "photo.png", "SourceIp": "10.0.0.7",
  "Sizes": [3, 7, 12], "Items": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 5}],
  "person": {"address": {"city": "Seattle"}}
}`

func TestMatch(t *testing.T) {
	tests := []struct {
		name, event, pattern string
		want                 bool
	}{
		// Lambda's DynamoDB examples.
		{"table key", ddbRecord, `{"dynamodb":{"Keys":{"CustomerName":{"S":["AnyCompany Industries"]}}}}`, true},
		{"table key, other value", ddbRecord, `{"dynamodb":{"Keys":{"CustomerName":{"S":["Other Inc"]}}}}`, false},
		{"new image, one of two", ddbRecord, `{"dynamodb":{"NewImage":{"AccountManager":{"S":["Pat Candella","Shirley Rodriguez"]}}}}`, true},
		{"AND of two attributes", ddbRecord, `{"dynamodb":{"NewImage":{"AccountManager":{"S":["Pat Candella"]},"PaymentTerms":{"S":["60 days"]}}}}`, true},
		{"AND, one fails", ddbRecord, `{"dynamodb":{"NewImage":{"AccountManager":{"S":["Pat Candella"]},"PaymentTerms":{"S":["30 days"]}}}}`, false},
		{"$or of attributes", ddbRecord, `{"dynamodb":{"NewImage":{"$or":[{"AccountManager":{"S":["Nobody"]}},{"PaymentTerms":{"S":["60 days"]}}]}}}`, true},
		{"$or, none", ddbRecord, `{"dynamodb":{"NewImage":{"$or":[{"AccountManager":{"S":["Nobody"]}},{"PaymentTerms":{"S":["30 days"]}}]}}}`, false},
		{"exists on the typed leaf", ddbRecord, `{"dynamodb":{"NewImage":{"AccountManager":{"S":[{"exists":true}]}}}}`, true},
		{"exists on the attribute (an intermediate node)", ddbRecord, `{"dynamodb":{"NewImage":{"AccountManager":[{"exists":true}]}}}`, false},
		{"not exists on the attribute (an intermediate node)", ddbRecord, `{"dynamodb":{"NewImage":{"AccountManager":[{"exists":false}]}}}`, true},
		{"not exists, absent attribute", ddbRecord, `{"dynamodb":{"NewImage":{"Discount":{"N":[{"exists":false}]}}}}`, true},
		{"not exists, present", ddbRecord, `{"dynamodb":{"NewImage":{"PaymentTerms":{"S":[{"exists":false}]}}}}`, false},
		{"eventName", ddbRecord, `{"eventName":["INSERT"]}`, true},
		{"eventName, other", ddbRecord, `{"eventName":["MODIFY","REMOVE"]}`, false},
		{"BOOL", ddbRecord, `{"dynamodb":{"NewImage":{"Active":{"BOOL":[true]}}}}`, true},
		{"N is a string: exact text", ddbRecord, `{"dynamodb":{"NewImage":{"Balance":{"N":["101"]}}}}`, true},
		{"N is a string: numeric does not apply", ddbRecord, `{"dynamodb":{"NewImage":{"Balance":{"N":[{"numeric":[">",100]}]}}}}`, false},
		{"N is a string: not a number literal", ddbRecord, `{"dynamodb":{"NewImage":{"Balance":{"N":[101]}}}}`, false},
		{"string set element", ddbRecord, `{"dynamodb":{"NewImage":{"Tags":{"SS":["eu"]}}}}`, true},
		{"prefix on an attribute", ddbRecord, `{"dynamodb":{"NewImage":{"PaymentTerms":{"S":[{"prefix":"60"}]}}}}`, true},
		{"numeric SizeBytes", ddbRecord, `{"dynamodb":{"SizeBytes":[{"numeric":["<",100]}]}}`, true},

		// Lambda's filter rule syntax table.
		{"null", event, `{"UserID":[null]}`, true},
		{"null, absent field", event, `{"Nope":[null]}`, false},
		{"null is not empty", event, `{"UserID":[""]}`, false},
		{"empty", event, `{"LastName":[""]}`, true},
		{"equals", event, `{"Name":["Alice"]}`, true},
		{"equals is case sensitive", event, `{"Name":["alice"]}`, false},
		{"equals-ignore-case", event, `{"Name":[{"equals-ignore-case":"aLiCe"}]}`, true},
		{"and", event, `{"Location":["New York"],"Day":["Monday"]}`, true},
		{"and, one fails", event, `{"Location":["New York"],"Day":["Tuesday"]}`, false},
		{"or", event, `{"PaymentType":["Credit","Debit"]}`, true},
		{"$or over fields", event, `{"$or":[{"Location":["Boston"]},{"Day":["Monday"]}]}`, true},
		{"$or with an AND beside it", event, `{"Name":["Bob"],"$or":[{"Location":["New York"]},{"Day":["Monday"]}]}`, false},
		{"not", event, `{"Weather":[{"anything-but":["Raining"]}]}`, true},
		{"not, excluded", event, `{"Weather":[{"anything-but":["Raining","Sunny"]}]}`, false},
		{"anything-but one string", event, `{"Weather":[{"anything-but":"Sunny"}]}`, false},
		{"anything-but needs the field", event, `{"Nope":[{"anything-but":["x"]}]}`, false},
		{"anything-but a number", event, `{"Price":[{"anything-but":[100,200]}]}`, false},
		{"anything-but prefix", event, `{"Region":[{"anything-but":{"prefix":"eu-"}}]}`, true},
		{"anything-but prefix, excluded", event, `{"Region":[{"anything-but":{"prefix":"us-"}}]}`, false},
		{"anything-but suffix list", event, `{"FileName":[{"anything-but":{"suffix":[".jpg",".png"]}}]}`, false},
		{"anything-but equals-ignore-case", event, `{"Name":[{"anything-but":{"equals-ignore-case":["ALICE"]}}]}`, false},
		{"anything-but wildcard", event, `{"FileName":[{"anything-but":{"wildcard":"*.gif"}}]}`, true},
		{"numeric equals", event, `{"Price":[{"numeric":["=",100]}]}`, true},
		{"numeric equals 100.0", event, `{"Price":[{"numeric":["=",100.0]}]}`, true},
		{"number literal by its text", event, `{"Price":[100.0]}`, false},
		{"number literal", event, `{"Price":[100]}`, true},
		{"numeric range", event, `{"Price":[{"numeric":[">",10,"<=",100]}]}`, true},
		{"numeric range, upper bound first", event, `{"Price":[{"numeric":["<=",100,">",10]}]}`, true},
		{"numeric range, outside", event, `{"Price":[{"numeric":[">",100,"<",200]}]}`, false},
		{"numeric on a string", event, `{"Name":[{"numeric":[">",0]}]}`, false},
		{"exists", event, `{"ProductName":[{"exists":true}]}`, true},
		{"exists, absent", event, `{"Nope":[{"exists":true}]}`, false},
		{"exists on null", event, `{"UserID":[{"exists":true}]}`, true},
		{"does not exist", event, `{"Nope":[{"exists":false}]}`, true},
		{"does not exist, present", event, `{"ProductName":[{"exists":false}]}`, false},
		{"exists on an intermediate node", event, `{"person":{"address":[{"exists":true}]}}`, false},
		{"exists on a leaf", event, `{"person":{"address":{"city":[{"exists":true}]}}}`, true},
		{"begins with", event, `{"Region":[{"prefix":"us-"}]}`, true},
		{"begins with, ignoring case", event, `{"Region":[{"prefix":{"equals-ignore-case":"US-"}}]}`, true},
		{"ends with", event, `{"FileName":[{"suffix":".png"}]}`, true},
		{"ends with, other", event, `{"FileName":[{"suffix":".jpg"}]}`, false},
		{"ends with, ignoring case", event, `{"FileName":[{"suffix":{"equals-ignore-case":".PNG"}}]}`, true},
		{"wildcard", event, `{"FileName":[{"wildcard":"ph*.p*g"}]}`, true},
		{"wildcard, no match", event, `{"FileName":[{"wildcard":"*.jpg"}]}`, false},
		{"wildcard, no star", event, `{"FileName":[{"wildcard":"photo.png"}]}`, true},
		{"cidr", event, `{"SourceIp":[{"cidr":"10.0.0.0/24"}]}`, true},
		{"cidr, outside", event, `{"SourceIp":[{"cidr":"10.0.1.0/24"}]}`, false},
		{"array: any element", event, `{"Sizes":[7]}`, true},
		{"array: numeric on elements", event, `{"Sizes":[{"numeric":[">",10]}]}`, true},
		{"array of objects is flattened", event, `{"Items":{"sku":["b-2"]}}`, true},
		{"array of objects: fields from different elements", event, `{"Items":{"sku":["a-1"],"qty":[5]}}`, true},
		{"nested path missing", event, `{"person":{"phone":{"home":["1"]}}}`, false},
		{"empty pattern matches all", event, `{}`, true},
		{"a rule on an object field", event, `{"person":["x"]}`, false},
		{"several rules, one matches", event, `{"Name":["Bob",{"prefix":"Al"}]}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.pattern)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			ev, err := Decode([]byte(tc.event))
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(ev); got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct{ name, pattern, want string }{
		{"empty", ``, "empty pattern"},
		{"not JSON", `{"a":`, "not JSON"},
		{"not an object", `["a"]`, "a pattern is a JSON object"},
		{"scalar value", `{"dynamodb":{"Keys":"x"}}`, `dynamodb.Keys: want a list of rules or an object, got "x"`},
		{"empty list", `{"a":[]}`, "a: an empty list of rules matches nothing"},
		{"unknown operator", `{"a":[{"contains":"x"}]}`, `a[0]: unknown operator "contains"`},
		{"two keys", `{"a":[{"prefix":"x","suffix":"y"}]}`, "exactly one key"},
		{"nested list", `{"a":[["x"]]}`, "not a list"},
		{"exists not bool", `{"a":[{"exists":"yes"}]}`, "exists: want true or false"},
		{"prefix number", `{"a":[{"prefix":5}]}`, "prefix: want a string"},
		{"prefix object", `{"a":[{"prefix":{"wildcard":"x"}}]}`, "equals-ignore-case"},
		{"numeric odd", `{"a":[{"numeric":[">"]}]}`, "numeric: want"},
		{"numeric bad op", `{"a":[{"numeric":["!=",1]}]}`, "numeric: operator"},
		{"numeric string", `{"a":[{"numeric":[">","1"]}]}`, "want a number"},
		{"numeric two lower", `{"a":[{"numeric":[">",1,">=",2]}]}`, "lower bound"},
		{"numeric inverted", `{"a":[{"numeric":[">",5,"<",1]}]}`, "above the upper"},
		{"numeric too big", `{"a":[{"numeric":[">",6e9]}]}`, "outside"},
		{"anything-but mixed", `{"a":[{"anything-but":["x",1]}]}`, "not both"},
		{"anything-but empty", `{"a":[{"anything-but":[]}]}`, "empty list"},
		{"anything-but bool", `{"a":[{"anything-but":true}]}`, "want strings or numbers"},
		{"anything-but numeric", `{"a":[{"anything-but":{"numeric":[">",1]}}]}`, "unknown operator"},
		{"wildcard two stars", `{"a":[{"wildcard":"a**"}]}`, "two stars"},
		{"wildcard bad escape", `{"a":[{"wildcard":"a\\n"}]}`, "backslash"},
		{"cidr bad", `{"a":[{"cidr":"10.0.0.0"}]}`, "cidr:"},
		{"$or not a list of objects", `{"$or":["x"]}`, "$or[0]: want a non-empty pattern object"},
		{"$or empty", `{"$or":[]}`, "$or: wants a list"},
		{"error inside $or", `{"$or":[{"a":["x"]},{"b":"y"}]}`, "$or[1].b: want a list"},
		{"too long", `{"a":["` + strings.Repeat("x", MaxPatternBytes) + `"]}`, "at most 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.pattern)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile(%s) = %v, want an error with %q", tc.pattern, err, tc.want)
			}
		})
	}
}

// TestCriteria: filters are ORed, an empty criteria passes everything, and
// errors name the filter.
func TestCriteria(t *testing.T) {
	var c Criteria
	if err := json.Unmarshal([]byte(`{"Filters":[{"Pattern":"{\"eventName\":[\"INSERT\"]}"},{"pattern":{"eventName":["REMOVE"]}}]}`), &c); err != nil {
		t.Fatal(err)
	}
	if c.Filters[1].Pattern != `{"eventName":["REMOVE"]}` {
		t.Fatalf("object pattern kept as %q", c.Filters[1].Pattern)
	}
	m, err := c.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"INSERT": true, "REMOVE": true, "MODIFY": false} {
		if got := m.MatchJSON([]byte(`{"eventName":"` + name + `"}`)); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
	if m.MatchJSON([]byte(`not json`)) {
		t.Error("text that is not JSON matched")
	}
	var none *Criteria
	if m, err := none.Compile(); err != nil || !m.Empty() || !m.MatchJSON([]byte(`{}`)) {
		t.Errorf("nil criteria: %v %v", m, err)
	}

	bad := Criteria{Filters: []Filter{{Pattern: `{"a":["x"]}`}, {Pattern: `{"a":"x"}`}}}
	if _, err := bad.Compile(); err == nil || !strings.HasPrefix(err.Error(), "filters[1].pattern: a: want") {
		t.Fatalf("error %v", err)
	}
	many := Criteria{Filters: make([]Filter, MaxFilters+1)}
	for i := range many.Filters {
		many.Filters[i].Pattern = `{}`
	}
	if _, err := many.Compile(); err == nil || !strings.Contains(err.Error(), "11 filters (at most 10)") {
		t.Fatalf("error %v", err)
	}
	var txt Text
	if err := json.Unmarshal([]byte(`5`), &txt); err == nil {
		t.Fatal("a number taken as a pattern")
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
		{"*ab*ab*", "abab", true},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{`a\\*`, `a\bc`, true},
	}
	for _, tc := range tests {
		segs, err := wildcard(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if got := globMatch(segs, tc.s); got != tc.want {
			t.Errorf("%q ~ %q = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
