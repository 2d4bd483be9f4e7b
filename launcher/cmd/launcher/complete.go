package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/fedscale/fedscale-go/launcher/cmd/cli"
)

// completeTimeout bounds the backend calls of one completion: a shell
// waits on them, and an unreachable cluster should cost seconds, not
// minutes.
const completeTimeout = 3 * time.Second

// completeJobs offers the names `launcher list` shows, with their backend
// and phase as the description, for the first argument.
func (g *globals) completeJobs(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()
	jobs, err := g.listAll(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	for _, j := range jobs {
		out = append(out, cobra.CompletionWithDesc(j.Job, j.Backend+", "+string(j.Phase)))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeProcesses offers the processes of the job named by the first
// argument (aggregator, executor-1, ...).
func (g *globals) completeProcesses(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()
	b, err := g.find(ctx, args[0])
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	st, err := b.Status(ctx, args[0])
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	for _, p := range st.Processes {
		out = append(out, cobra.CompletionWithDesc(p.Name, string(p.Phase)))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeJobFile offers YAML files, the job files submit takes.
func completeJobFile(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return []cobra.Completion{"yml", "yaml"}, cobra.ShellCompDirectiveFilterFileExt
}

// registerGlobalCompletions completes the persistent flags' fixed values.
func registerGlobalCompletions(root *cobra.Command) {
	cli.CompleteFlag(root, "backend", backendOrder...)
}
