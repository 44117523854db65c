#!/usr/bin/env bash
# Experiment 2: MHA, MLA and MTLA (s = 2, 4) trained with identical settings on the offline
# Debian En-De corpus, evaluated with beam search on its test split.
#   CORPUS=DIR bash experiments/st_quality/run.sh      (builds the corpus there if missing)
exec bash "$(dirname "$0")/../compare.sh" st_quality mha,mla,mtla2,mtla4
