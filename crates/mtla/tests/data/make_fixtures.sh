#!/usr/bin/env bash
# Regenerates the MTLA reference fixtures with the authors' PyTorch code (mtla 0.3.2 on PyPI),
# through ../shared/oracles/mtla_reference.py in its venv. Not run by CI: outputs are committed.
#   bash crates/mtla/tests/data/make_fixtures.sh [ORACLES_DIR] [PYTHON]
set -euo pipefail
cd "$(dirname "$0")"
ORACLES=${1:-../../../../../shared/oracles}
PY=${2:-$HOME/oracle-venv/bin/python}
small="--embed-dim 64 --num-heads 4 --kv-lora-rank 32 --qk-nope-head-dim 16 --qk-rope-head-dim 8 --v-head-dim 16"
run() { out=$1; shift; "$PY" "$ORACLES/mtla_reference.py" --out "$out" --no-debug "$@" > "${out%.safetensors}.json"; }
# s = 1 (the oracle applies the one-line fix of upstream's r = 1 decode bug), batch 2, prefix 5.
run s1.safetensors $small --down-rate 1 --batch 2 --seq-len 13 --prompt-len 5 --seed 1
# s = 2 with per-row position offsets (as padded prompts produce).
run s2_offsets.safetensors $small --down-rate 2 --batch 3 --seq-len 13 --prompt-len 5 \
    --position-offset 3 --row-position-step 1.5 --seed 2
# s = 3 with biases, a length that is not a multiple of s.
run s3_bias.safetensors $small --down-rate 3 --batch 2 --seq-len 14 --prompt-len 4 --bias --seed 3
# s = 4 with a low-rank query.
run s4_qlora.safetensors $small --down-rate 4 --batch 2 --seq-len 15 --prompt-len 6 --q-lora-rank 24 --seed 4
# A longer sequence with a long prefix, s = 3, batch 3.
run s3_long.safetensors $small --down-rate 3 --batch 3 --seq-len 41 --prompt-len 17 --seed 5
# The paper's dimensions: d 512, 8 heads, r 256, nope 64, rope 32, v 64, s = 2.
run paper_s2.safetensors --embed-dim 512 --num-heads 8 --kv-lora-rank 256 --qk-nope-head-dim 64 \
    --qk-rope-head-dim 32 --v-head-dim 64 --down-rate 2 --batch 2 --seq-len 19 --prompt-len 8 \
    --row-position-step 2 --seed 6
ls -la
