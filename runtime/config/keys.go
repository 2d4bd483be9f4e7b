package config

import (
	"fmt"
	"sort"
	"strings"
)

// originalKeyList is every flag name the original FedScale parser
// (fedscale/cloud/config_parser.py) knows. A job file may carry any of them;
// those without a Conf field are accepted with a warning.
const originalKeyList = `
adam_epsilon backbone backend batch_size blacklist_max_len blacklist_rounds block_size cfg_file
clf_block_size clip_bound clip_threshold clock_factor conf_path connection_timeout cuda_device
cut_off_util data_cache data_dir data_map_file data_set decay_factor decay_round
device_avail_file device_conf_file dump_epoch embedding_file engine epsilon eval_interval
executor_configs experiment_mode exploration_alpha exploration_decay exploration_factor
exploration_min filter_less filter_more finetune gamma gradient_policy hidden-layers
hidden-size input_dim input_shape job_name labels-path learning_rate line_by_line local_steps
log_path loss_decay malicious_factor max_concurrency max_staleness memory_capacity
min_learning_rate mlm mlm_probability model model_size model_zoo n_actions n_states
no-bidirectional noise-dir noise-max noise-min noise-prob noise_factor num_classes
num_executors num_loaders num_participants output_dim overcommitment overwrite_cache
pacer_delta pacer_step proxy_mu ps_ip ps_port qfed_q rnn-type round_penalty round_threshold
rounds sample-rate sample_mode sample_seed sample_window save_checkpoint spec-augment
speed-volume-perturb target_delta target_replace_iter task test-manifest test_bsz
test_output_dir test_ratio test_size_file this_rank time_stamp train-manifest train_size_file
train_uniform use_cuda vocab_tag_size vocab_token_size wandb_token weight_decay window
window-size window-stride yogi_beta yogi_beta2 yogi_eta yogi_tau
`

var (
	originalKeys = func() map[string]bool {
		m := make(map[string]bool)
		for _, k := range strings.Fields(originalKeyList) {
			m[k] = true
		}
		return m
	}()

	// knownKeys is ours ∪ the original's, sorted; the candidates for
	// "did you mean" on job_conf keys.
	knownKeys = func() []string {
		set := make(map[string]bool, len(originalKeys)+len(fields))
		for k := range originalKeys {
			set[k] = true
		}
		for _, f := range fields {
			set[f.key] = true
		}
		keys := make([]string, 0, len(set))
		for k := range set {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys
	}()
)

// KnownKeys returns every job_conf key this package accepts (the keys it
// uses and the keys the original FedScale parser knows), sorted. The slice
// is a fresh copy.
func KnownKeys() []string {
	return append([]string(nil), knownKeys...)
}

// unknownKeyError names an unknown key of the given section and the nearest
// candidate, so a typo points straight at its fix.
func unknownKeyError(section, key string, candidates []string) error {
	near := nearest(key, candidates)
	if near == "" {
		return fmt.Errorf("unknown %s key %q", section, clip(key))
	}
	return fmt.Errorf("unknown %s key %q (did you mean %q?)", section, clip(key), near)
}

// nearest returns the candidate with the smallest edit distance to key
// (the first in candidate order on ties), or "" when there are none.
func nearest(key string, candidates []string) string {
	// Fuzzed or garbage keys can be long; distances to ~20-byte keys are
	// decided by the first bytes anyway, so bound the quadratic work.
	const maxLen = 64
	if len(key) > maxLen {
		key = key[:maxLen]
	}
	best, bestD := "", -1
	for _, c := range candidates {
		if d := editDistance(key, c); bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, by bytes (keys
// are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
