// Package dashboardtest drives the demo dashboard in headless Chromium for
// tests: open the page, wait for rows, cells, viewers and the connection
// state to reach a value, and take screenshots. It is shared by the
// dashboard's own browser test and the end-to-end test of `wsgate demo`.
//
// Every Wait function polls the page (about every 50 ms) until the
// condition holds or ctx is done; give ctx a deadline with
// context.WithTimeout on the context Open returns. On timeout the error
// says what the page showed last.
//
// Chromium comes from Debian's chromium package (/usr/bin/chromium). It is
// found with testenv.LookPath, so a test without it is skipped locally and
// fails under CI=true.
package dashboardtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/wsgate/wsgate/internal/testenv"
)

// Desktop and Phone are the viewport sizes, in CSS pixels, the tests and
// the README screenshot use.
const (
	DesktopWidth, DesktopHeight = 1280, 900
	PhoneWidth, PhoneHeight     = 390, 844
)

// startTimeout bounds starting Chromium and loading the page.
const startTimeout = 60 * time.Second

// Open starts a headless Chromium with a fresh profile, loads url in it at
// desktop size and returns the tab's context. The browser is stopped when
// the test ends, or earlier by cancel. Uncaught JavaScript exceptions on the
// page fail the test when it ends, so a broken page cannot pass silently.
//
// extra adds browser options, e.g. chromedp.Flag("host-resolver-rules",
// "MAP evil.test 127.0.0.1") to play a foreign site on loopback.
func Open(t testing.TB, url string, extra ...chromedp.ExecAllocatorOption) (ctx context.Context, cancel context.CancelFunc) {
	t.Helper()
	exe := testenv.LookPath(t, "chromium", "apt-get install -y chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(DesktopWidth, DesktopHeight),
		// Without these, Chromium reaches out to Google's services, which a
		// closed network answers by refusing connections.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	var once sync.Once
	cancel = func() {
		once.Do(func() {
			cancelTab()
			cancelAlloc()
		})
	}

	var mu sync.Mutex
	var exceptions []string
	t.Cleanup(func() {
		cancel()
		mu.Lock()
		defer mu.Unlock()
		for _, e := range exceptions {
			t.Errorf("uncaught JavaScript exception on the page: %s", e)
		}
	})

	// The first Run starts the browser and lives as long as tabCtx, so it
	// gets no deadline; the wait below bounds it instead.
	done := make(chan error, 1)
	go func() {
		err := chromedp.Listen(tabCtx, func(ev any) {
			if e, ok := ev.(*runtime.EventExceptionThrown); ok {
				mu.Lock()
				exceptions = append(exceptions, describeException(e.ExceptionDetails))
				mu.Unlock()
			}
		})
		if err == nil {
			err = chromedp.Do(tabCtx, chromedp.Navigate(url))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			cancel()
			t.Fatalf("opening %s in chromium: %v", url, err)
		}
	case <-time.After(startTimeout):
		cancel()
		t.Fatalf("opening %s in chromium: no answer after %v", url, startTimeout)
	}
	return tabCtx, cancel
}

func describeException(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "unknown"
	}
	msg := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		msg = d.Exception.Description
	}
	return fmt.Sprintf("%s (%s:%d:%d)", msg, d.URL, d.LineNumber+1, d.ColumnNumber+1)
}

// SetViewport resizes the page's viewport to width × height CSS pixels;
// mobile also emulates a phone (device scale 2, touch, mobile viewport).
func SetViewport(ctx context.Context, width, height int, mobile bool) error {
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height), opts...)); err != nil {
		return fmt.Errorf("setting viewport %dx%d: %w", width, height, err)
	}
	return nil
}

// SetColorScheme makes the page see prefers-color-scheme: scheme ("light"
// or "dark"); "" removes the override.
func SetColorScheme(ctx context.Context, scheme string) error {
	p := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, p)
		return err
	}))
	if err != nil {
		return fmt.Errorf("setting color scheme %q: %w", scheme, err)
	}
	return nil
}

// Screenshot writes a PNG of the whole page (beyond the viewport) to path.
// CSS animations (highlights of new rows, flashing cells) are switched off
// during the capture, so the picture shows the settled page.
func Screenshot(ctx context.Context, path string) error {
	return screenshot(ctx, path, chromedp.FullScreenshot(100))
}

// ViewportScreenshot writes a PNG of what the viewport shows to path, with
// animations switched off as Screenshot does.
func ViewportScreenshot(ctx context.Context, path string) error {
	return screenshot(ctx, path, chromedp.CaptureScreenshot())
}

func screenshot(ctx context.Context, path string, capture chromedp.Action[[]byte]) error {
	// Switch animations off while capturing (and hide rows on their way
	// out) and let two frames pass, so the compositor has painted the
	// settled page: a full-page capture paints beyond the viewport and would
	// otherwise show highlights half-faded.
	settle := `(async () => {
		const s = document.createElement('style');
		s.id = 'dashboardtest-still';
		s.textContent = '*, *::before, *::after { animation: none !important; transition: none !important; } tr.is-gone { display: none; }';
		document.head.append(s);
		document.getAnimations().forEach(a => { try { a.finish(); } catch {} });
		await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
		return true;
	})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](settle, chromedp.EvalAwaitPromise)); err != nil {
		return fmt.Errorf("stilling animations: %w", err)
	}
	defer chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('dashboardtest-still')?.remove()`))
	png, err := chromedp.Run(ctx, capture)
	if err != nil {
		return fmt.Errorf("taking screenshot: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("writing screenshot: %w", err)
	}
	return nil
}

// Eval evaluates a JavaScript expression on the page and decodes its
// JSON value into a T.
func Eval[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// poll evaluates expr, which must yield a string, until it equals want.
func poll(ctx context.Context, what, expr, want string) error {
	var last string
	var seen bool
	var lastErr error
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		switch {
		case err == nil && got == want:
			return nil
		case err == nil:
			last, seen = got, true
		case ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if !seen && lastErr != nil {
				return fmt.Errorf("waiting for %s: %w (evaluating on the page failed: %v)", what, ctx.Err(), lastErr)
			}
			return fmt.Errorf("waiting for %s: %w (page shows %q)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// rowSel is the CSS selector of the live (not fading out) row with key id.
func rowSel(id string) string {
	return `'tr[data-key="' + CSS.escape(` + jsString(id) + `) + '"]:not(.is-gone)'`
}

// WaitCell waits until the row whose key is id shows value in column
// (the cell's raw value, e.g. "12.5" for an amount shown as 12.50).
func WaitCell(ctx context.Context, id, column, value string) error {
	expr := `(() => { const td = document.querySelector(` + rowSel(id) + ` + ' td[data-col="' + CSS.escape(` +
		jsString(column) + `) + '"]'); return td ? td.dataset.value : '<no such row or column>'; })()`
	return poll(ctx, fmt.Sprintf("row %s %s = %q", id, column, value), expr, value)
}

// WaitRowStatus waits until the row whose key is id shows status.
func WaitRowStatus(ctx context.Context, id, status string) error {
	return WaitCell(ctx, id, "status", status)
}

// WaitRowGone waits until no row with key id is on the page any more,
// fading out included.
func WaitRowGone(ctx context.Context, id string) error {
	expr := `document.querySelector('tr[data-key="' + CSS.escape(` + jsString(id) + `) + '"]') ? 'present' : 'gone'`
	return poll(ctx, "row "+id+" removed", expr, "gone")
}

// WaitConnection waits until the page's connection state is state: "live"
// (subscribed and caught up), "connecting", "reconnecting" or "offline".
func WaitConnection(ctx context.Context, state string) error {
	return poll(ctx, "connection "+state, `document.querySelector('#conn').dataset.state`, state)
}

// WaitLive waits until the page is subscribed and caught up.
func WaitLive(ctx context.Context) error { return WaitConnection(ctx, "live") }

// WaitViewers waits until the page shows n viewers.
func WaitViewers(ctx context.Context, n int) error {
	return poll(ctx, "viewers "+strconv.Itoa(n), `document.querySelector('#viewers').textContent.trim()`, strconv.Itoa(n))
}

// WaitFeed waits until the change feed holds at least n entries.
func WaitFeed(ctx context.Context, n int) error {
	expr := `document.querySelectorAll('#feed li').length >= ` + strconv.Itoa(n) + ` ? 'ok' : String(document.querySelectorAll('#feed li').length)`
	return poll(ctx, fmt.Sprintf("%d feed entries", n), expr, "ok")
}

// RowIDs returns the keys of the rows shown, top to bottom, without the
// rows fading out.
func RowIDs(ctx context.Context) ([]string, error) {
	ids, err := Eval[[]string](ctx, `[...document.querySelectorAll('#rows tbody tr:not(.is-gone)')].map(tr => tr.dataset.key)`)
	if err != nil {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	return ids, nil
}

// Rows returns the rows shown, top to bottom, without the rows fading out:
// each maps a column to its cell's raw value (numbers as JavaScript prints
// them, "" for NULL), with the row's key under "" .
func Rows(ctx context.Context) ([]map[string]string, error) {
	rows, err := Eval[[]map[string]string](ctx, `[...document.querySelectorAll('#rows tbody tr:not(.is-gone)')].map(tr =>
		Object.fromEntries([['', tr.dataset.key], ...[...tr.cells].map(td => [td.dataset.col, td.dataset.value])]))`)
	if err != nil {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	return rows, nil
}

// Feed returns the change feed's entries, newest first, as
// "KIND key: text".
func Feed(ctx context.Context) ([]string, error) {
	items, err := Eval[[]string](ctx, `[...document.querySelectorAll('#feed li')].map(li =>
		li.dataset.kind + ' ' + li.dataset.key + ': ' +
		[...li.querySelectorAll('.ev-body > *')].map(line => line.children.length
			? [...line.children].map(c => c.textContent.trim()).join(' ')
			: line.textContent.trim()).join(' '))`)
	if err != nil {
		return nil, fmt.Errorf("reading feed: %w", err)
	}
	return items, nil
}

// Text returns the visible text of the first element matching the CSS
// selector, "" when there is none.
func Text(ctx context.Context, selector string) (string, error) {
	s, err := Eval[string](ctx, `(() => { const e = document.querySelector(`+jsString(selector)+`); return e ? e.innerText : ''; })()`)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", selector, err)
	}
	return strings.TrimSpace(s), nil
}
