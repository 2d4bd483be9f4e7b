package aggregator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fedscale/fedscale-go/runtime/jobapi"
)

// A real job, watched through its job document by pollers racing the
// event loop (run with -race): every document they read is consistent
// (rounds and history never go back), and the final one agrees with
// metrics.jsonl and shows no path of the job's.
func TestJobDocumentLive(t *testing.T) {
	c := baseConf(t)
	j := startAggregator(t, c, 2, nil)
	srv := httptest.NewServer(j.agg.JobHandler())
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			round, history := -1, 0
			for ctx.Err() == nil {
				d, err := jobapi.Fetch(ctx, srv.Client(), srv.URL, -1)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				if d.Round < round || len(d.History) < history {
					errs <- fmt.Errorf("went back: round %d after %d, %d history records after %d", d.Round, round, len(d.History), history)
					return
				}
				round, history = d.Round, len(d.History)
			}
		}()
	}
	var execs []<-chan error
	for r := 1; r <= 2; r++ {
		execs = append(execs, startExecutor(t, context.Background(), j, r, 1, nil))
	}
	res := j.wait(t)
	for _, e := range execs {
		if err := <-e; err != nil {
			t.Errorf("executor: %v", err)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	body := get(t, srv.URL+jobapi.Path, http.StatusOK)
	for _, secret := range []string{c.LogPath, c.DataDir} {
		if strings.Contains(body, secret) {
			t.Errorf("the document shows the path %s", secret)
		}
	}
	d, err := jobapi.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if d.State != jobapi.StateFinished || d.Round != c.Rounds || d.Job != c.JobName || d.Config.Model != c.Model || d.Config.NumParticipants != c.NumParticipants {
		t.Errorf("final document: state %s, round %d, job %s, config %+v", d.State, d.Round, d.Job, d.Config)
	}
	want, _ := json.Marshal(readMetrics(t, res.MetricsFile))
	if got, _ := json.Marshal(d.History); string(got) != string(want) {
		t.Errorf("history\n%s\nwant metrics.jsonl's\n%s", got, want)
	}
	done := 0
	for _, e := range d.Executors {
		if e.State != jobapi.ExecutorDone || e.LastContact == nil {
			t.Errorf("executor %+v, want done with a last contact", e)
		}
		done += e.TasksDone
	}
	if done == 0 || d.ExecutorCounts.Done != 2 {
		t.Errorf("%d tasks done, counts %+v", done, d.ExecutorCounts)
	}
	var events []string
	for _, e := range d.Events {
		events = append(events, e.Message)
	}
	all := strings.Join(events, "\n")
	for _, w := range []string{"Executor 1 registered", fmt.Sprintf("Round %d evaluated", c.Rounds), fmt.Sprintf("Job finished: %d rounds", c.Rounds)} {
		if !strings.Contains(all, w) {
			t.Errorf("events lack %q:\n%s", w, all)
		}
	}

	// Bad input, and ?since=.
	for _, tc := range []struct {
		method, query string
		code          int
		rounds        int    // history records, on 200
		body          string // substring, otherwise
	}{
		{"GET", "", 200, c.Rounds + 1, ""},
		{"GET", "?since=-1", 200, c.Rounds + 1, ""},
		{"GET", "?since=2", 200, c.Rounds - 2, ""},
		{"GET", fmt.Sprintf("?since=%d", c.Rounds), 200, 0, ""},
		{"GET", "?since=abc", 400, 0, "since must be a round number"},
		{"GET", "?since=-2", 400, 0, "since must be a round number"},
		{"GET", "?since=99999999999999999999", 400, 0, "since must be a round number"},
		{"POST", "", 405, 0, "read-only"},
		{"DELETE", "", 405, 0, "read-only"},
	} {
		t.Run(tc.method+tc.query, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+jobapi.Path+tc.query, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, b)
			}
			if tc.code != 200 {
				if !strings.Contains(string(b), tc.body) {
					t.Errorf("body %q, want %q", b, tc.body)
				}
				return
			}
			d, err := jobapi.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.History) != tc.rounds {
				t.Errorf("%d history records, want %d", len(d.History), tc.rounds)
			}
		})
	}
}

func get(t *testing.T, url string, code int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %s, want %d: %s", url, resp.Status, code, b)
	}
	return string(b)
}
