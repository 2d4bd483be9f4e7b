package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/fedscale/fedscale-go/launcher/backend"
)

func statusCommand(g *globals, stdout io.Writer) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status [JOB]",
		Short: "Show a job's processes (phase, restarts, exit codes) and progress; all jobs without JOB",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if len(args) == 0 {
				jobs, err := g.listAll(cmd.Context())
				if err != nil {
					return err
				}
				return printStatus(stdout, output, jobs, false)
			}
			b, err := g.find(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			st, err := b.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printStatus(stdout, output, []backend.Status{st}, true)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	return cmd
}

func listCommand(g *globals, stdout io.Writer) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs on every reachable backend (or --backend)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			jobs, err := g.listAll(cmd.Context())
			if err != nil {
				return err
			}
			return printStatus(stdout, output, jobs, false)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	return cmd
}

func checkOutput(o string) error {
	switch o {
	case "table", "json", "yaml":
		return nil
	}
	return fmt.Errorf("-o %q: want table, json or yaml", o)
}

// listAll lists --backend, or every backend that can be reached.
func (g *globals) listAll(ctx context.Context) ([]backend.Status, error) {
	names := backendOrder
	if g.backend != "" {
		names = []string{g.backend}
	}
	var out []backend.Status
	for _, n := range names {
		b, err := g.open(n)
		if err != nil {
			if g.backend != "" {
				return nil, err
			}
			continue
		}
		jobs, err := b.List(ctx)
		if err != nil {
			if g.backend != "" {
				return nil, err
			}
			continue
		}
		out = append(out, jobs...)
	}
	return out, nil
}

func printStatus(w io.Writer, output string, jobs []backend.Status, detail bool) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if detail {
			return enc.Encode(jobs[0])
		}
		return enc.Encode(jobs)
	case "yaml":
		var v any = jobs
		if detail {
			v = jobs[0]
		}
		data, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !detail {
		fmt.Fprintln(tw, "JOB\tBACKEND\tPHASE\tPROCESSES\tROUND\tTOP-1")
		for _, j := range jobs {
			running := 0
			for _, p := range j.Processes {
				if p.Phase == backend.Running {
					running++
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d running\t%s\t%s\n", j.Job, j.Backend, j.Phase, running, len(j.Processes), intOr(j.Round), floatOr(j.Accuracy))
		}
		return tw.Flush()
	}
	j := jobs[0]
	fmt.Fprintf(tw, "job %s on %s: %s, round %s, top-1 %s\n\n", j.Job, j.Backend, j.Phase, intOr(j.Round), floatOr(j.Accuracy))
	fmt.Fprintln(tw, "PROCESS\tPHASE\tREADY\tRESTARTS\tEXIT\tMESSAGE")
	for _, p := range j.Processes {
		exit := "-"
		if p.ExitCode != nil {
			exit = strconv.Itoa(*p.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\t%s\n", p.Name, p.Phase, p.Ready, p.Restarts, exit, strings.ReplaceAll(p.Message, "\n", " "))
	}
	return tw.Flush()
}

func intOr(v *int) string {
	if v == nil {
		return "-"
	}
	return strconv.Itoa(*v)
}

func floatOr(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 4, 64)
}
