package eventfilter

import "testing"

// BenchmarkMatchJSON: decoding a DynamoDB stream record and matching it
// against two filters, the cost a filtered stream adds per record.
func BenchmarkMatchJSON(b *testing.B) {
	c := Criteria{Filters: []Filter{
		{Pattern: `{"eventName":["MODIFY"],"dynamodb":{"NewImage":{"PaymentTerms":{"S":[{"prefix":"30"}]}}}}`},
		{Pattern: `{"dynamodb":{"NewImage":{"AccountManager":{"S":[{"anything-but":["Nobody"]}]}}}}`},
	}}
	m, err := c.Compile()
	if err != nil {
		b.Fatal(err)
	}
	rec := []byte(ddbRecord)
	b.ReportAllocs()
	for b.Loop() {
		if !m.MatchJSON(rec) {
			b.Fatal("no match")
		}
	}
}
