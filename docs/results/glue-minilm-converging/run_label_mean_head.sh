#!/bin/sh
# One process per run (each picks up the code as it is then), one torch thread, until the plan is recorded.
cd "$(dirname "$0")/../../.." || exit 1
export OMP_NUM_THREADS=1
while python docs/results/glue-minilm-converging/run_label_mean_head.py --one; do :; done
