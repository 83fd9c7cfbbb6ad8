package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kerf-edge/kerf/internal/cli"
	"github.com/kerf-edge/kerf/profiles/api"
)

func rulesList(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	rs, err := c.Rules(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tSTATE\tUPDATED\tREASON")
	for _, r := range rs {
		updated := "-"
		if !r.Updated.IsZero() {
			updated = r.Updated.Format(time.RFC3339)
		}
		// An active rule's phase, and why it stands there.
		state, reason := string(r.State), r.Reason
		if r.Phase != "" {
			state += " (" + string(r.Phase) + ")"
		}
		if reason == "" {
			reason = r.Why
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Source, state, updated, reason)
	}
	return tw.Flush()
}

func rulesShow(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "rule name")
	if err != nil {
		return err
	}
	r, err := c.Rule(ctx, name)
	if err != nil {
		return err
	}
	return writeJSON(w, r)
}

func rulesPut(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	file, err := oneArg(cmd, "file")
	if err != nil {
		return err
	}
	r, err := ReadRuleFile(file)
	if err != nil {
		return err
	}
	if r, err = c.PutRule(ctx, r); err != nil {
		return err
	}
	fmt.Fprintf(w, "stored rule %s (%s)\n", r.Name, r.State)
	return nil
}

func rulesValidate(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	file, err := oneArg(cmd, "file")
	if err != nil {
		return err
	}
	r, err := ReadRuleFile(file)
	if err != nil {
		return err
	}
	if err := c.ValidateRule(ctx, r); err != nil {
		return err
	}
	fmt.Fprintf(w, "rule %s is valid on this node\n", r.Name)
	return nil
}

func rulesDelete(ctx context.Context, c *Client, cmd *cli.Command, w io.Writer) error {
	name, err := oneArg(cmd, "rule name")
	if err != nil {
		return err
	}
	if err := c.DeleteRule(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(w, "deleted rule %s\n", name)
	return nil
}

// ReadRuleFile reads a rule from file ("-": standard input), YAML or
// JSON: either the rule itself, as one entry of the config file's
// ingest.rules, named by its name field, or the API's document (name and
// rule, as `kerf rules show` prints it).
func ReadRuleFile(file string) (api.Rule, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return api.Rule{}, err
	}
	r, err := ParseRule(data)
	if err != nil {
		return r, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// ParseRule reads one rule as ReadRuleFile does.
func ParseRule(data []byte) (api.Rule, error) {
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return api.Rule{}, fmt.Errorf("want one YAML or JSON object: %w", err)
	}
	var extra any
	if dec.Decode(&extra) != io.EOF {
		return api.Rule{}, fmt.Errorf("more than one document")
	}
	if inner, ok := doc["rule"]; ok { // the API's document
		doc = map[string]any{"name": doc["name"], "rule": inner}
	} else {
		doc = map[string]any{"name": doc["name"], "rule": doc}
	}
	name, _ := doc["name"].(string)
	if name == "" {
		return api.Rule{}, fmt.Errorf("the rule has no name")
	}
	b, err := json.Marshal(doc["rule"])
	if err != nil {
		return api.Rule{}, err
	}
	return api.Rule{Name: name, Rule: b}, nil
}
