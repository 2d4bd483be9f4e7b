package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
	"github.com/fedscale/fedscale-go/launcher/results"
)

func resultsCommand(g *globals, stdout io.Writer) *cobra.Command {
	var output, plot string
	cmd := &cobra.Command{
		Use:   "results JOB",
		Short: "Show a job's per-round metrics (from the running aggregator, else its metrics.jsonl) and plot them",
		Example: `  launcher results femnist                     # a table: round, clocks, participants, losses, top-1, top-5
  launcher results femnist -o csv > femnist.csv
  launcher results femnist --plot femnist.png  # accuracy and loss against the round (.png or .svg)`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: g.completeJobs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cli.OneOf("-o", output, results.Formats...); err != nil {
				return err
			}
			var format string
			if plot != "" {
				var err error
				if format, err = results.PlotFormat(plot); err != nil {
					return cli.Usage(err)
				}
			}
			b, err := g.find(cmd.Context(), args[0])
			if err != nil {
				return backendErr(err)
			}
			res, err := results.Load(cmd.Context(), b, args[0])
			if errors.Is(err, results.ErrNoRounds) {
				return cli.WithCode(cli.ExitFailure, err)
			}
			if err != nil {
				return backendErr(err)
			}
			if res.Source == results.SourceLog && res.Dropped > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "job %s: read from the aggregator's log, which starts after round %d (resumed from a checkpoint); "+
					"metrics.jsonl in data_path on its node has every round\n", args[0], res.Dropped-1)
			}
			if plot != "" {
				if err := writePlot(plot, format, res); err != nil {
					return err
				}
			}
			return results.Write(stdout, output, res)
		},
	}
	cli.OutputFlag(cmd, &output, "table", "table, csv or json", results.Formats...)
	cmd.Flags().StringVar(&plot, "plot", "", "also draw the metrics to this .png or .svg file")
	return cmd
}

// writePlot draws res into path, leaving no partial file behind.
func writePlot(path, format string, res results.Results) error {
	var b bytes.Buffer
	if err := results.Plot(&b, format, res); err != nil {
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--plot %s: %w", path, err)
	}
	return nil
}
