#!/usr/bin/env bash
# Regenerates the paired bootstrap fixture: the `corpus` score case's hypotheses as the system,
# a baseline that is the system with every 71st segment replaced by its reference, and the
# p-values of sacreBLEU 2.6.0's own `--paired-bs` (BLEU, 10000 resamples) for seeds 1-5.
# Not run by CI: the outputs are committed.
#   bash crates/metrics/tests/data/bootstrap/make_fixture.sh [SACREBLEU]
set -euo pipefail
cd "$(dirname "$0")"
SACREBLEU=${1:-$HOME/oracle-venv/bin/sacrebleu}
CASE=../scores/corpus
paste -d '\n' "$CASE/hyp.txt" "$CASE/ref.txt" | awk 'NR % 2 == 1 { h = $0; next } { print ((NR / 2) % 71 == 1 ? $0 : h) }' > baseline.txt
for seed in 1 2 3 4 5; do
  SACREBLEU_SEED=$seed "$SACREBLEU" "$CASE/ref.txt" -i baseline.txt "$CASE/hyp.txt" \
    --paired-bs --paired-bs-n 10000 -m bleu -f json 2>/dev/null
done | python3 -c '
import json, sys
text = sys.stdin.read()
dec, i, runs = json.JSONDecoder(), 0, []
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    obj, i = dec.raw_decode(text, i)
    runs.append(obj)
p = [run[1]["BLEU"]["p_value"] for run in runs]
json.dump({"resamples": 10000, "seeds": [1, 2, 3, 4, 5], "bleu_p_values": p,
           "baseline_bleu": runs[0][0]["BLEU"]["score"], "system_bleu": runs[0][1]["BLEU"]["score"]},
          sys.stdout, indent=1)
print()' > sacrebleu_paired_bs.json
cat sacrebleu_paired_bs.json
