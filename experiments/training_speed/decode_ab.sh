#!/usr/bin/env bash
# Decode step of MTLA s = 2 at T 1024, two mtla-st binaries against the authors' PyTorch module,
# alternating in one session (this VM drifts by +-30 % between runs, so only same-round ratios
# mean much). A running `mtla-st train` is paused (SIGSTOP) meanwhile and resumed after.
#   bash experiments/training_speed/decode_ab.sh OLD_BIN NEW_BIN [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-$HOME/oracle-venv/bin/python}
train=$(pgrep -f "mtla-st train" || true)
[ -n "$train" ] && kill -STOP $train
trap '[ -n "$train" ] && kill -CONT $train' EXIT
for i in $(seq 1 "${3:-3}"); do
  json=$(mktemp)
  "$PYTHON" ../shared/oracles/bench_reference.py --batch 8 --lengths 1024 --rates 2 --reps 1 \
    --decode-reps 3 --threads 2 --no-mha --json "$json" > /dev/null
  python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; \
print('authors step (tail) %.3f ms' % (r['decode_step_tail_wall_s'] * 1e3))" "$json"
  for bin in "$1" "$2"; do
    echo -n "$bin: "
    "$bin" bench attention --lengths 1024 --kinds mtla2 --reps 5 --steps 32 --threads 2 \
      --parallel-max-len 0 2>&1 | grep "T="
  done
done
