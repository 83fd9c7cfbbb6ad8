package profiles

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kerf-edge/kerf/profiles/api"
	"github.com/kerf-edge/kerf/profiles/client"
)

// fakeJobs accepts a job document with a command, and reports every job
// it was told of as armed, or as runs has it.
type fakeJobs struct {
	mu      sync.Mutex
	changed int
	runs    map[string]api.JobRuns
}

func (f *fakeJobs) ValidateJob(j api.Job) error {
	var doc map[string]any
	if err := json.Unmarshal(j.Job, &doc); err != nil {
		return err
	}
	if doc["command"] == nil {
		return &ValidationError{Fields: []api.FieldError{{Field: "command", Message: "empty"}}}
	}
	return nil
}

func (f *fakeJobs) JobRuns(name string) (api.JobRuns, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.changed == 0 {
		return api.JobRuns{}, false
	}
	if r, ok := f.runs[name]; ok {
		return r, true
	}
	return api.JobRuns{State: api.JobStateArmed, Reason: "no live series of q", Running: []api.JobInstance{},
		Runs: []api.JobRun{{Instance: name + "-1", ExitCode: 0, Outcome: api.JobRunOutcomeSucceeded}}}, true
}

func (f *fakeJobs) JobsChanged() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changed++
}

// contractJobs covers the jobs endpoints: stored like rules, checked by
// Deps.Jobs, refused with field errors under "job.".
func contractJobs(t *testing.T, e *env, cov covered) {
	t.Helper()
	a := e.admin
	fj := &fakeJobs{}
	e.srv.deps.Jobs = fj
	defer func() { e.srv.deps.Jobs = nil }()
	job := map[string]any{"name": "infer", "job": map[string]any{"command": "/opt/infer"}}
	if r := e.call(cov, "POST /v1/jobs", "/v1/jobs", a, job); r.code != 201 {
		t.Fatalf("create job: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("POST", "/v1/jobs", a, job), 409)
	pr := problemOf(t, e.do("POST", "/v1/jobs", a, map[string]any{"name": "bad", "job": map[string]any{"args": []string{"x"}}}), 422)
	if len(pr.Errors) != 1 || pr.Errors[0].Field != "job.command" {
		t.Fatalf("field errors %+v", pr.Errors)
	}
	problemOf(t, e.do("POST", "/v1/jobs", a, map[string]any{"name": "bad", "job": []int{1}}), 422)
	problemOf(t, e.do("POST", "/v1/jobs", a, map[string]any{"name": "Bad!", "job": map[string]any{"command": "/x"}}), 422)
	var j api.Job
	e.call(cov, "GET /v1/jobs/{name}", "/v1/jobs/infer", a, nil).json(t, &j)
	if j.State != api.JobStateArmed || j.Reason == "" || j.Created.IsZero() {
		t.Fatalf("job %+v", j)
	}
	var js []api.Job
	e.call(cov, "GET /v1/jobs", "/v1/jobs", a, nil).json(t, &js)
	if len(js) != 1 || js[0].Name != "infer" {
		t.Fatalf("jobs %+v", js)
	}
	if r := e.call(cov, "PUT /v1/jobs/{name}", "/v1/jobs/infer", a, job); r.code != 200 {
		t.Fatalf("replace job: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("PUT", "/v1/jobs/other", a, job), 422)
	var runs api.JobRuns
	e.call(cov, "GET /v1/jobs/{name}/runs", "/v1/jobs/infer/runs", a, nil).json(t, &runs)
	if runs.State != api.JobStateArmed || len(runs.Runs) != 1 {
		t.Fatalf("runs %+v", runs)
	}
	problemOf(t, e.do("GET", "/v1/jobs/nope/runs", a, nil), 404)
	var val api.Validation
	e.call(cov, "POST /v1/jobs/{name}/validate", "/v1/jobs/dry/validate", a, map[string]any{"job": map[string]any{"command": "/x"}}).json(t, &val)
	if !val.Valid {
		t.Fatal("a valid job was not valid")
	}
	problemOf(t, e.do("POST", "/v1/jobs/dry/validate", a, map[string]any{"job": map[string]any{}}), 422)
	problemOf(t, e.do("GET", "/v1/jobs/dry", a, nil), 404) // a dry run stores nothing
	if r := e.call(cov, "DELETE /v1/jobs/{name}", "/v1/jobs/infer", a, nil); r.code != 204 {
		t.Fatalf("delete job: %d %s", r.code, r.body)
	}
	problemOf(t, e.do("DELETE", "/v1/jobs/infer", a, nil), 404)
	if fj.changed != 3 {
		t.Fatalf("the runner was told of %d changes, want 3", fj.changed)
	}
}

// TestJobsCLI runs `kerf jobs` against the server: what show prints, put
// takes back, and a refusal names the field at fault.
func TestJobsCLI(t *testing.T) {
	e := newEnv(t)
	e.srv.deps.Jobs = &fakeJobs{}
	ts := httptest.NewServer(e.srv)
	defer ts.Close()
	c := client.New(ts.URL, e.admin)
	run := func(args ...string) (string, error) {
		var b strings.Builder
		err := client.RunCLI(context.Background(), c, args, &b)
		return b.String(), err
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "infer.yaml")
	os.WriteFile(file, []byte("# a job\nname: infer\ntenant: vision\ncommand: /opt/infer\nslice: {fraction: 0.1}\n"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"jobs", "validate", file}, "job infer is valid"},
		{[]string{"jobs", "put", file}, "stored job infer (armed)"},
		{[]string{"jobs", "list"}, "infer  armed"},
		{[]string{"jobs", "show", "infer"}, `"command": "/opt/infer"`},
		{[]string{"jobs", "runs", "infer"}, "infer-1"},
	} {
		out, err := run(tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%v: %v\n%s", tc.args, err, out)
		}
	}
	out, err := run("jobs", "show", "infer")
	if err != nil {
		t.Fatal(err)
	}
	shown := filepath.Join(dir, "shown.json")
	os.WriteFile(shown, []byte(out), 0o600)
	if out, err := run("jobs", "put", shown); err != nil || !strings.Contains(out, "stored job infer") {
		t.Errorf("put what show printed: %v %s", err, out)
	}
	os.WriteFile(file, []byte("name: bad\ntenant: vision\n"), 0o600)
	if _, err := run("jobs", "put", file); err == nil || !strings.Contains(err.Error(), "422") || !strings.Contains(err.Error(), "job.command: empty") {
		t.Errorf("put a bad job: %v", err)
	}
	if out, err := run("jobs", "delete", "infer"); err != nil || !strings.Contains(out, "deleted job infer") {
		t.Errorf("delete: %v %s", err, out)
	}
}
