package dashboard

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The page and every file it names are served from the binary, with the
// right types and the security headers; nothing else is.
func TestServes(t *testing.T) {
	mux := http.NewServeMux()
	for _, p := range Patterns {
		mux.Handle(p, Handler())
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, page := get("GET", "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("/: %s %v", resp.Status, resp.Header)
	}
	// Every URL the page uses is relative (port-forward, service proxy).
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) != 5 {
		t.Fatalf("the page names %d files, want 5: %v", len(refs), refs)
	}
	types := map[string]string{".js": "text/javascript", ".css": "text/css"}
	for _, r := range refs {
		ref := r[1]
		if ref == "data:," {
			continue // no favicon
		}
		if strings.HasPrefix(ref, "/") || strings.Contains(ref, "//") {
			t.Errorf("%s is not a relative URL", ref)
		}
		resp, body := get("GET", "/"+ref)
		ext := ref[strings.LastIndex(ref, "."):]
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), types[ext]) || len(body) == 0 {
			t.Errorf("%s: %s, %s, %d bytes", ref, resp.Status, resp.Header.Get("Content-Type"), len(body))
		}
	}
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/static/", 404},
		{"GET", "/static/nosuch.js", 404},
		{"GET", "/other", 404},
		{"POST", "/", 405},
		{"PUT", "/static/dashboard.js", 405},
		{"HEAD", "/", 200},
	} {
		if resp, _ := get(tc.method, tc.path); resp.StatusCode != tc.code {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, resp.Status, tc.code)
		}
	}
}

// The committed uPlot files are npm's uplot@UPlotVersion as published,
// with its licence.
func TestUPlotAsPublished(t *testing.T) {
	for name, sum := range map[string]string{
		"static/uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
		"static/uPlot.min.css":     "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
	} {
		b, err := files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(b); hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s is not uplot %s's file", name, UPlotVersion)
		}
	}
	if b, err := files.ReadFile("static/uPlot.LICENSE"); err != nil || !strings.Contains(string(b), "MIT License") {
		t.Errorf("uPlot's licence: %v", err)
	}
}
