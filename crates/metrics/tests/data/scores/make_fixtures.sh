#!/usr/bin/env bash
# Regenerates the score parity fixtures: writes the texts (make_texts.py), scores every case
# with the oracle (sacrebleu 2.6.0, jiwer 4.0.0 via ../shared/oracles/score_reference.py, run
# in its venv) into CASE/scores.json, and records per-line oracle results (sacrebleu's 13a
# tokenization, jiwer's per-segment WER counts) in CASE/segments.json.
# Not run by CI: the outputs are committed.
#   bash crates/metrics/tests/data/scores/make_fixtures.sh [ORACLES_DIR] [PYTHON]
set -euo pipefail
cd "$(dirname "$0")"
ORACLES=${1:-../../../../../../shared/oracles}
PY=${2:-$HOME/oracle-venv/bin/python}

"$PY" make_texts.py
for dir in */; do
  case=${dir%/}
  refs=(--ref "$case/ref.txt")
  [ -f "$case/ref2.txt" ] && refs+=(--ref "$case/ref2.txt")
  "$PY" "$ORACLES/score_reference.py" --hyp "$case/hyp.txt" "${refs[@]}" > "$case/scores.json"
  "$PY" - "$case" <<'PYEOF'
import json, sys
import jiwer
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

case = sys.argv[1]
def read(name):  # as score_reference.py reads files
    with open(f"{case}/{name}", encoding="utf-8") as f:
        return [line.rstrip("\n").rstrip("\r") for line in f]
hyps, refs = read("hyp.txt"), read("ref.txt")
tok = Tokenizer13a()
wer = []
for h, r in zip(hyps, refs):
    o = jiwer.process_words(r, h)
    wer.append([o.substitutions, o.deletions, o.insertions, o.hits])
json.dump({"tokenized_13a": {line: tok(line) for line in hyps + refs},
           "wer_counts": wer}, open(f"{case}/segments.json", "w"), indent=1, ensure_ascii=False)
PYEOF
  echo "$case: $(wc -l < "$case/hyp.txt") segments, $(( ${#refs[@]} / 2 )) reference file(s)"
done
