package client

import "context"

// Paginator walks a paginated listing, as the SDK's paginators do:
//
//	p := client.NewMembersPaginator(c, "room", 100)
//	for p.HasMorePages() {
//		page, err := p.NextPage(ctx)
//		...
//	}
//
// A Paginator is not safe for concurrent use.
type Paginator[P any] struct {
	fetch   func(ctx context.Context, token string) (page P, next string, err error)
	token   string
	started bool
}

// HasMorePages reports whether NextPage has a page to return.
func (p *Paginator[P]) HasMorePages() bool { return !p.started || p.token != "" }

// NextPage fetches the next page. After an error the same page may be asked
// for again. A page whose next token is the one that fetched it ends the
// walk, as the SDK's paginators' StopOnDuplicateToken does.
func (p *Paginator[P]) NextPage(ctx context.Context) (P, error) {
	page, next, err := p.fetch(ctx, p.token)
	if err != nil {
		return page, err
	}
	if next == p.token {
		next = ""
	}
	p.started, p.token = true, next
	return page, nil
}

// each calls f with every remaining page.
func (p *Paginator[P]) each(ctx context.Context, f func(P)) error {
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		f(page)
	}
	return nil
}
