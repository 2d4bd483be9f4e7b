package main

import (
	"context"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

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

// completeContexts offers the contexts of the kubeconfig the k8s backend
// would read (--kubeconfig, else the usual loading rules), as kubectl does.
func (g *globals) completeContexts(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	cfg, err := rules.Load()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var out []cobra.Completion
	for name, c := range cfg.Contexts {
		out = append(out, cobra.CompletionWithDesc(name, c.Cluster))
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// registerGlobalCompletions completes the persistent flags.
func (g *globals) registerGlobalCompletions(root *cobra.Command) {
	cli.CompleteFlag(root, "backend", backendOrder...)
	if err := root.RegisterFlagCompletionFunc("context", g.completeContexts); err != nil {
		panic(err) // an unknown flag: a programming error every test catches
	}
	_ = root.MarkPersistentFlagFilename("kubeconfig")
	_ = root.MarkPersistentFlagDirname("state-dir")
	_ = root.MarkPersistentFlagDirname("bin-dir")
}
