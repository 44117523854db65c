#!/usr/bin/env bash
# Experiment 3: ASR (English transcripts) with MHA and MTLA (s = 2), identical settings, on the offline
# Debian En-De corpus, evaluated with beam search on its test split.
#   CORPUS=DIR bash experiments/asr_quality/run.sh      (builds the corpus there if missing)
exec bash "$(dirname "$0")/../compare.sh" asr_quality mha,mtla2
