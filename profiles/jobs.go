package profiles

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kerf-edge/kerf/profiles/api"
)

// Triggered jobs: documents stored like rules, checked and run by
// Deps.Jobs.

// withJobState sets j's state as the runner has it.
func (h handlers) withJobState(j api.Job) api.Job {
	j.State, j.Reason = api.JobStatePending, ""
	if h.deps.Jobs == nil {
		return j
	}
	if r, ok := h.deps.Jobs.JobRuns(j.Name); ok {
		j.State, j.Reason = r.State, r.Reason
	}
	return j
}

func (h handlers) ListJobs(c echo.Context) error {
	stored, err := h.store.Jobs()
	if err != nil {
		return err
	}
	out := make([]api.Job, 0, len(stored))
	for _, j := range stored {
		out = append(out, h.withJobState(j))
	}
	return c.JSON(http.StatusOK, out)
}

// readJob reads the job in the body as readRule does and has Deps.Jobs
// check it.
func (h handlers) readJob(c echo.Context, name string) (api.Job, error) {
	var j api.Job
	v, err := h.readBody(c, &j, &j.Name, name)
	if err != nil {
		return j, err
	}
	if err := v.orNil(); err != nil {
		return j, err
	}
	if h.deps.Jobs != nil {
		err := h.deps.Jobs.ValidateJob(j)
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			fs := make([]api.FieldError, len(ve.Fields))
			for i, f := range ve.Fields {
				fs[i] = api.FieldError{Field: "job." + f.Field, Message: f.Message}
			}
			return j, invalid("the job is not valid", fs)
		case err != nil:
			return j, invalid("the job is not valid: "+err.Error(), []api.FieldError{{Field: "job", Message: err.Error()}})
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, j.Job); err == nil {
		j.Job = compact.Bytes()
	}
	j.Created, j.Updated, j.State, j.Reason = time.Time{}, time.Time{}, "", ""
	return j, nil
}

func (h handlers) CreateJob(c echo.Context) error {
	j, err := h.readJob(c, "")
	if err != nil {
		return err
	}
	if j, _, err = h.store.PutJob(j, true); err != nil {
		return err
	}
	h.jobsChanged()
	return c.JSON(http.StatusCreated, h.withJobState(j))
}

func (h handlers) GetJob(c echo.Context, name api.Name) error {
	j, err := h.store.Job(name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.withJobState(j))
}

func (h handlers) PutJob(c echo.Context, name api.Name) error {
	j, err := h.readJob(c, name)
	if err != nil {
		return err
	}
	j, existed, err := h.store.PutJob(j, false)
	if err != nil {
		return err
	}
	h.jobsChanged()
	return c.JSON(putStatus(existed), h.withJobState(j))
}

// ValidateJob is PutJob's dry run.
func (h handlers) ValidateJob(c echo.Context, name api.Name) error {
	if _, err := h.readJob(c, name); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.Validation{Valid: true})
}

func (h handlers) DeleteJob(c echo.Context, name api.Name) error {
	if err := h.store.DeleteJob(name); err != nil {
		return err
	}
	h.jobsChanged()
	return c.NoContent(http.StatusNoContent)
}

func (h handlers) GetJobRuns(c echo.Context, name api.Name) error {
	if _, err := h.store.Job(name); err != nil {
		return err
	}
	runs := api.JobRuns{State: api.JobStatePending, Running: []api.JobInstance{}, Runs: []api.JobRun{}}
	if h.deps.Jobs != nil {
		if r, ok := h.deps.Jobs.JobRuns(name); ok {
			runs = r
		}
	}
	return c.JSON(http.StatusOK, runs)
}

// jobsChanged tells Deps.Jobs that the stored jobs changed.
func (h handlers) jobsChanged() {
	if h.deps.Jobs != nil {
		h.deps.Jobs.JobsChanged()
	}
}
