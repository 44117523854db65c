"""Times one attention layer's training step (parallel forward + backward) in PyTorch, eager,
fp32: the authors' MultiheadTemporalLatentAttention (mtla 0.3.2, loaded unmodified by the oracle
loader) and torch.nn.MultiheadAttention with a causal mask, dropout 0, at the shapes of
`mtla-st bench attention-train`. Prints one JSON line per (kind, T): the median and minimum
wall seconds over --reps runs after one warm-up. Needs the oracle venv.

usage: python -c SCRIPT ORACLES_DIR THREADS REPS BATCH LENGTHS KINDS
  (LENGTHS and KINDS comma-separated; kinds: mha, mtla<r>)"""
import json, statistics, sys, time

oracles, threads, reps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lengths = [int(t) for t in sys.argv[5].split(",")]
kinds = sys.argv[6].split(",")
sys.path.insert(0, oracles)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from _mtla_loader import load_mtla_module  # noqa: E402

torch.set_num_threads(threads)
MTLA = load_mtla_module().MultiheadTemporalLatentAttention
D, H = 512, 8

for T in lengths:
    torch.manual_seed(0)
    x = torch.randn(batch, T, D)
    pos = torch.arange(T, dtype=torch.float32).expand(batch, T).contiguous()
    probe = torch.randn(batch, T, D)
    for kind in kinds:
        torch.manual_seed(0)
        if kind == "mha":
            layer = nn.MultiheadAttention(D, H, dropout=0.0, bias=True, batch_first=True)
            causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)

            def forward(xi):
                return layer(xi, xi, xi, attn_mask=causal, need_weights=False, is_causal=True)[0]
        elif kind.startswith("mtla"):
            layer = MTLA(embed_dim=D, num_heads=H, dropout=0.0, q_lora_rank=0, kv_lora_rank=256,
                         qk_nope_head_dim=64, qk_rope_head_dim=32, v_head_dim=64,
                         down_rate=int(kind[4:]))

            def forward(xi):
                return layer(xi, xi, xi, position=pos)
        else:
            continue
        layer.train()

        def step():
            xi = x.clone().requires_grad_(True)
            (forward(xi) * probe).sum().backward()
            layer.zero_grad(set_to_none=True)

        step()
        runs = []
        for _ in range(reps):
            t0 = time.perf_counter()
            step()
            runs.append(time.perf_counter() - t0)
        print(json.dumps({"kind": kind, "T": T, "wall_s": statistics.median(runs),
                          "wall_min_s": min(runs), "torch": torch.__version__}), flush=True)
