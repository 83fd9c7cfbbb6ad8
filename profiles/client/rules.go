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
	data, err := readFileArg(file)
	if err != nil {
		return api.Rule{}, err
	}
	r, err := ParseRule(data)
	if err != nil {
		return r, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// readFileArg reads file, or standard input for "-".
func readFileArg(file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(file)
}

// ParseRule reads one rule as ReadRuleFile does.
func ParseRule(data []byte) (api.Rule, error) {
	name, doc, err := parseNamedDoc(data, "rule")
	return api.Rule{Name: name, Rule: doc}, err
}

// parseNamedDoc reads one YAML or JSON object: the document itself, named
// by its name field, or the API's form, {name, KEY: document}. It returns
// the name and the document as JSON.
func parseNamedDoc(data []byte, key string) (string, json.RawMessage, error) {
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return "", nil, fmt.Errorf("want one YAML or JSON object: %w", err)
	}
	var extra any
	if dec.Decode(&extra) != io.EOF {
		return "", nil, fmt.Errorf("more than one document")
	}
	name, _ := doc["name"].(string)
	if name == "" {
		return "", nil, fmt.Errorf("the %s has no name", key)
	}
	inner, ok := doc[key] // the API's document
	if !ok {
		inner = doc
	}
	b, err := json.Marshal(inner)
	return name, b, err
}
