package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/launcher/backend"
	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
)

// outputs are the values of status's and list's -o.
var outputs = []string{"table", "json", "yaml"}

func statusCommand(g *globals, stdout io.Writer) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status [JOB]",
		Short: "Show a job's processes (phase, restarts, exit codes) and progress; all jobs without JOB",
		Example: `  launcher status                      # every job on every reachable backend
  launcher status femnist              # one job: each process's phase, restarts and exit code
  launcher status femnist -o json      # the same as one JSON object
  launcher status femnist --backend k8s -n fedscale`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: g.completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cli.OneOf("-o", output, outputs...); err != nil {
				return err
			}
			if len(args) == 0 {
				jobs, err := g.listAll(cmd.Context())
				if err != nil {
					return backendErr(err)
				}
				return printStatus(stdout, output, jobs, false)
			}
			b, err := g.find(cmd.Context(), args[0])
			if err != nil {
				return backendErr(err)
			}
			st, err := b.Status(cmd.Context(), args[0])
			if err != nil {
				return backendErr(err)
			}
			return printStatus(stdout, output, []backend.Status{st}, true)
		},
	}
	cli.OutputFlag(cmd, &output, "table", "table, json or yaml", outputs...)
	return cmd
}

func listCommand(g *globals, stdout io.Writer) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs on every reachable backend (or --backend)",
		Example: `  launcher list
  launcher list --backend docker -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cli.OneOf("-o", output, outputs...); err != nil {
				return err
			}
			jobs, err := g.listAll(cmd.Context())
			if err != nil {
				return backendErr(err)
			}
			return printStatus(stdout, output, jobs, false)
		},
	}
	cli.OutputFlag(cmd, &output, "table", "table, json or yaml", outputs...)
	return cmd
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
	if output != "table" {
		var v any = jobs
		if detail {
			v = jobs[0]
		}
		return cli.Encode(w, output, v)
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
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d running\t%s\t%s\n", j.Job, j.Backend, j.Phase, running, len(j.Processes), roundOf(j), floatOr(j.Accuracy))
		}
		return tw.Flush()
	}
	j := jobs[0]
	fmt.Fprintf(tw, "job %s on %s: %s, round %s, top-1 %s\n", j.Job, j.Backend, j.Phase, roundOf(j), floatOr(j.Accuracy))
	for _, c := range j.Conditions {
		fmt.Fprintf(tw, "%s: %s\n", c.Type, c.Message)
	}
	fmt.Fprintln(tw)
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

// roundOf is "N/M" while the aggregator says both, else "N" or "-".
func roundOf(j backend.Status) string {
	if j.Round != nil && j.Rounds != nil {
		return strconv.Itoa(*j.Round) + "/" + strconv.Itoa(*j.Rounds)
	}
	return intOr(j.Round)
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
