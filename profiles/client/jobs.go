package client

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/profiles/api"
)

func jobsList(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	js, err := c.Jobs(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tUPDATED\tREASON")
	for _, j := range js {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", j.Name, j.State, j.Updated.Format(time.RFC3339), j.Reason)
	}
	return tw.Flush()
}

func jobsShow(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "job name")
	if err != nil {
		return err
	}
	j, err := c.Job(ctx, name)
	if err != nil {
		return err
	}
	return writeJSON(w, j)
}

func jobsPut(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	j, err := jobFileArg(cmd)
	if err != nil {
		return err
	}
	if j, err = c.PutJob(ctx, j); err != nil {
		return err
	}
	fmt.Fprintf(w, "stored job %s (%s)\n", j.Name, j.State)
	return nil
}

func jobsValidate(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	j, err := jobFileArg(cmd)
	if err != nil {
		return err
	}
	if err := c.ValidateJob(ctx, j); err != nil {
		return err
	}
	fmt.Fprintf(w, "job %s is valid\n", j.Name)
	return nil
}

func jobsDelete(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "job name")
	if err != nil {
		return err
	}
	if err := c.DeleteJob(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(w, "deleted job %s; its instances are stopping\n", name)
	return nil
}

func jobsRuns(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "job name")
	if err != nil {
		return err
	}
	r, err := c.JobRuns(ctx, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "state: %s\nreason: %s\nfailures in a row: %d\n", r.State, r.Reason, r.Failures)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSOURCE\tSTARTED\tDURATION\tEXIT\tOUTCOME\tREASON")
	for _, in := range r.Running {
		state := "running"
		if in.Stopping {
			state = "stopping"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t%s\t\n", in.ID, dash(in.Source), in.Started.Format(time.RFC3339), state)
	}
	for i := len(r.Runs) - 1; i >= 0; i-- { // newest first
		run := r.Runs[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", run.Instance, dash(run.Source), run.Started.Format(time.RFC3339),
			run.Ended.Sub(run.Started).Round(time.Millisecond), run.ExitCode, run.Outcome, run.Reason)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// jobFileArg reads the job file the command's one argument names.
func jobFileArg(cmd *cli.Command) (api.Job, error) {
	file, err := oneArg(cmd, "file")
	if err != nil {
		return api.Job{}, err
	}
	data, err := readFileArg(file)
	if err != nil {
		return api.Job{}, err
	}
	j, err := ParseJob(data)
	if err != nil {
		return j, fmt.Errorf("%s: %w", file, err)
	}
	return j, nil
}

// ParseJob reads one job, YAML or JSON: the job document itself, named by
// its name field, or the API's document (name and job, as `kerf jobs
// show` prints it).
func ParseJob(data []byte) (api.Job, error) {
	name, doc, err := parseNamedDoc(data, "job")
	return api.Job{Name: name, Job: doc}, err
}
