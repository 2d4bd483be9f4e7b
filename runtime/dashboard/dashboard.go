// Package dashboard is the job's web page, served by the aggregator on its
// HTTP port at /: a summary, accuracy and loss curves, the executors and
// the latest events, updated by polling the job document
// (runtime/jobapi). Everything it needs is embedded in the binary, so it
// works in the scratch image, offline, behind `kubectl port-forward` and
// through the API server's service proxy (every URL it uses is relative).
//
// The charts are uPlot (static/uPlot.*), the file of npm's uplot package
// committed as published: UPlotVersion, its licence in
// static/uPlot.LICENSE.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

// UPlotVersion is the uplot npm package whose dist files are in static/.
const UPlotVersion = "1.6.32"

//go:embed static
var files embed.FS

// Patterns are the paths Handler serves, for an http.ServeMux: the page
// at exactly / and its files under /static/.
var Patterns = []string{"/{$}", "/static/"}

// Handler serves the page and its files, read-only.
func Handler() http.Handler {
	static := http.FileServerFS(files)
	page, _ := fs.ReadFile(files, "static/index.html") // embedded: cannot fail
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		// Only this origin's own files run: nothing a document says can
		// load or run anything else.
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path == "/" || r.URL.Path == "" {
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
			_, _ = w.Write(page)
			return
		}
		if r.URL.Path[len(r.URL.Path)-1] == '/' {
			http.NotFound(w, r) // no folder listings
			return
		}
		static.ServeHTTP(w, r)
	})
}
