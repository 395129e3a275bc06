package dashboard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The generator keeps the table between these sizes: below MinRows it only
// inserts, above MaxRows it prefers deleting delivered orders.
const (
	MinRows = 20
	MaxRows = 30
)

// statusFlow is the life of an order; a status outside it (a visitor's
// "refunded") is left alone except that such an order may be deleted.
var statusFlow = []string{"pending", "paid", "shipped", "delivered"}

var (
	customers = []string{
		"Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson",
		"Edsger Dijkstra", "Barbara Liskov", "Ken Thompson", "Margaret Hamilton",
		"Dennis Ritchie", "Frances Allen", "Donald Knuth", "Radia Perlman",
		"Leslie Lamport", "Hedy Lamarr", "Claude Shannon", "Sophie Wilson",
	}
	// items pairs each product with its unit price.
	items = []struct {
		name  string
		price float64
	}{
		{"Espresso beans 1 kg", 24.90}, {"Pour-over kettle", 54.00},
		{"Ceramic mug", 12.50}, {"Burr grinder", 139.00},
		{"Paper filters (100)", 6.20}, {"Milk frother", 39.95},
		{"Travel tumbler", 22.00}, {"Tasting notebook", 9.75},
		{"Cold brew jar", 28.40}, {"Digital scale", 31.00},
	}
)

// order is one row of the demo table.
type order struct {
	ID        string
	Status    string
	Customer  string
	Item      string
	Quantity  int
	Amount    float64
	UpdatedAt time.Time
}

// newOrder makes a pending order with id o-<n>.
func newOrder(r *rand.Rand, n int, now time.Time) order {
	it := items[r.IntN(len(items))]
	q := 1 + r.IntN(4)
	return order{
		ID:        "o-" + strconv.Itoa(n),
		Status:    statusFlow[0],
		Customer:  customers[r.IntN(len(customers))],
		Item:      it.name,
		Quantity:  q,
		Amount:    money(it.price * float64(q)),
		UpdatedAt: now,
	}
}

// money rounds to cents.
func money(v float64) float64 { return math.Round(v*100) / 100 }

// seedOrders is what EnsureSchema puts in a new table: a few orders in
// every status, so the first page already tells the story.
func seedOrders(now time.Time) []order {
	r := rand.New(rand.NewPCG(uint64(now.UnixNano()), 1))
	var seed []order
	for i := range 8 {
		o := newOrder(r, 1001+i, now)
		o.Status = statusFlow[(7-i)/2]
		seed = append(seed, o)
	}
	return seed
}

// Generator writes synthetic changes to the demo table so the dashboard has
// something to show: new pending orders, status transitions along
// pending → paid → shipped → delivered, quantity and amount corrections on
// unpaid orders, and deletes of delivered orders. It keeps the table between
// MinRows and MaxRows rows. Each change is one SQL statement, so each is one
// record in the table's change stream.
type Generator struct {
	// DB is the database, opened with OpenDB. Required.
	DB *sql.DB
	// Table is the table to write, created by EnsureSchema. Default "orders".
	Table string
	// Rate is the number of changes per second; 0 (the default) makes none
	// and Run only waits for its context.
	Rate float64
	// Logger receives a warning for each failed change. Default: discard.
	Logger *slog.Logger
}

// Run writes changes at g.Rate until ctx is done, then returns nil. A
// failed change (the database busy beyond its timeout, a row changed under
// it) is logged and the next one is tried at the next tick; Run returns an
// error only when the table cannot be used at all: an invalid name or a
// table that does not exist.
func (g *Generator) Run(ctx context.Context) error {
	if g.DB == nil {
		return errors.New("generator: no database")
	}
	if g.Rate < 0 || math.IsNaN(g.Rate) || math.IsInf(g.Rate, 0) {
		return fmt.Errorf("generator: rate %v: want a finite number >= 0", g.Rate)
	}
	table := g.Table
	if table == "" {
		table = "orders"
	}
	q, err := quoteTable(table)
	if err != nil {
		return fmt.Errorf("generator: %w", err)
	}
	if _, err := g.DB.ExecContext(ctx, `SELECT id, status, quantity, amount FROM `+q+` LIMIT 0`); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("generator: table %s: %w", table, err)
	}
	if g.Rate == 0 {
		<-ctx.Done()
		return nil
	}
	log := g.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &step{db: g.DB, table: q, r: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))}

	// A ticker drops ticks when a change takes longer than the period, so
	// the rate is an upper bound that is never exceeded to catch up.
	period := time.Duration(float64(time.Second) / g.Rate)
	if period <= 0 {
		period = time.Nanosecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := s.change(ctx); err != nil && ctx.Err() == nil {
			log.Warn("generator change failed", "table", table, "err", err)
		}
	}
}

// step makes one change at a time; it belongs to Run's goroutine.
type step struct {
	db    *sql.DB
	table string // quoted
	r     *rand.Rand
}

// change makes one change, chosen from what the table holds now.
func (s *step) change(ctx context.Context) error {
	var count, delivered, maxN int
	err := s.db.QueryRowContext(ctx, `SELECT count(*),
		coalesce(sum(status = 'delivered'), 0),
		coalesce(max(CAST(substr(id, 3) AS INTEGER)) FILTER (WHERE id GLOB 'o-[0-9]*'), 1000)
		FROM `+s.table).Scan(&count, &delivered, &maxN)
	if err != nil {
		return fmt.Errorf("counting rows: %w", err)
	}
	now := time.Now()
	switch {
	case count < MinRows || (count < MaxRows && s.r.IntN(4) == 0):
		return s.insert(ctx, newOrder(s.r, maxN+1, now))
	case delivered > 0 && (count >= MaxRows || s.r.IntN(5) == 0):
		return s.remove(ctx)
	case s.r.IntN(5) == 0:
		return s.amend(ctx, now)
	default:
		return s.advance(ctx, now)
	}
}

func (s *step) insert(ctx context.Context, o order) error {
	if err := insertOrder(ctx, s.db, s.table, o); err != nil {
		return fmt.Errorf("inserting %s: %w", o.ID, err)
	}
	return nil
}

// remove deletes the delivered order that has waited longest, or any order
// outside the status flow when no order is delivered.
func (s *step) remove(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM `+s.table+` WHERE id = (
		SELECT id FROM `+s.table+` WHERE status = 'delivered' OR status NOT IN (`+flowList()+`)
		ORDER BY status = 'delivered' DESC, updated_at LIMIT 1)`)
	if err != nil {
		return fmt.Errorf("deleting: %w", err)
	}
	return nil
}

// advance moves a random order that is not delivered yet one status on.
func (s *step) advance(ctx context.Context, now time.Time) error {
	id, status, err := s.pick(ctx, `status IN (`+flowList()+`) AND status <> 'delivered'`)
	if err != nil || id == "" {
		return err
	}
	next := statusFlow[0]
	for i, st := range statusFlow[:len(statusFlow)-1] {
		if st == status {
			next = statusFlow[i+1]
		}
	}
	// The status condition makes a concurrent change (a visitor's UPDATE)
	// win: this statement then changes nothing.
	_, err = s.db.ExecContext(ctx, `UPDATE `+s.table+` SET status = ?, updated_at = ? WHERE id = ? AND status = ?`,
		next, timestamp(now), id, status)
	if err != nil {
		return fmt.Errorf("advancing %s: %w", id, err)
	}
	return nil
}

// amend changes the quantity (and with it the amount) of a pending order,
// as a customer editing their cart would; with no pending order it advances
// one instead.
func (s *step) amend(ctx context.Context, now time.Time) error {
	var id string
	var cur int
	err := s.db.QueryRowContext(ctx, `SELECT id, quantity FROM `+s.table+
		` WHERE status = 'pending' ORDER BY random() LIMIT 1`).Scan(&id, &cur)
	if errors.Is(err, sql.ErrNoRows) {
		return s.advance(ctx, now)
	}
	if err != nil {
		return fmt.Errorf("picking a row: %w", err)
	}
	// A quantity in 1..6 other than the current one, so the change shows.
	q := (cur+s.r.IntN(5))%6 + 1
	_, err = s.db.ExecContext(ctx, `UPDATE `+s.table+` SET quantity = ?,
		amount = round(amount / max(quantity, 1) * ?, 2), updated_at = ?
		WHERE id = ? AND status = 'pending' AND quantity = ?`, q, q, timestamp(now), id, cur)
	if err != nil {
		return fmt.Errorf("amending %s: %w", id, err)
	}
	return nil
}

// pick returns a random row matching where, or "" when there is none.
func (s *step) pick(ctx context.Context, where string) (id, status string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT id, status FROM `+s.table+` WHERE `+where+
		` ORDER BY random() LIMIT 1`).Scan(&id, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("picking a row: %w", err)
	}
	return id, status, nil
}

// flowList is statusFlow as an SQL list of literals.
func flowList() string {
	return "'" + strings.Join(statusFlow, "', '") + "'"
}
