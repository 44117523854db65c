#!/usr/bin/env bash
# Issue 11's ST ceiling: how much BLEU do this corpus's 34093 training pairs allow at all? A text
# translation model (English *transcripts* -> German, no audio) trained with fairseq's standard
# Transformer on exactly the ST runs' train/dev/test pairs, scored with sacreBLEU on the same 500
# test sentences. With equal training, speech translation from the same pairs should not do better.
#   CORPUS=DIR bash experiments/st_recipe/mt_ceiling/run.sh   (after ../shared/anchors/fairseq/setup.sh;
#   a rerun with a larger HOURS resumes the training from WORK)
# Env (defaults): VENV ($HOME/oracle-venv), FAIRSEQ ($HOME/fairseq-anchor/fairseq-src), WORK
# ($HOME/mtla-runs/mt_ceiling), HOURS (1.0: fairseq's --stop-time-hours), THREADS (1), VOCAB (4000:
# one SentencePiece unigram model over both languages), ARCH (transformer_iwslt_de_en at d 256).
set -euo pipefail
CORPUS=$(realpath "${CORPUS:-$HOME/corpora/deen-9k}")
VENV=${VENV:-$HOME/oracle-venv}
FAIRSEQ=${FAIRSEQ:-$HOME/fairseq-anchor/fairseq-src}
WORK=$(realpath -m "${WORK:-$HOME/mtla-runs/mt_ceiling}")
THREADS=${THREADS:-1}
VOCAB=${VOCAB:-4000}
PY="$VENV/bin/python"
export PYTHONPATH=$FAIRSEQ OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
# fairseq's checkpoints pickle an argparse.Namespace, which torch >= 2.6 refuses by default (ours).
export TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1
mkdir -p "$WORK"
cd "$WORK"
if [ ! -d bin ]; then
# 1. The manifests' source (English as written) and target (German) columns.
"$PY" - "$CORPUS" <<'PY'
import csv, sys
corpus = sys.argv[1]
for split in ("train", "dev", "test"):
    with open(f"{corpus}/{split}.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    for lang, col in (("en", "src_text"), ("de", "tgt_text")):
        with open(f"{split}.{lang}", "w") as out:
            out.writelines(r[col].strip() + "\n" for r in rows)
    print(split, len(rows), "pairs")
PY
# 2. One SentencePiece model for both sides (training text only), applied to every split.
"$PY" - "$VOCAB" <<'PY'
import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(input="train.en,train.de", model_prefix="spm", vocab_size=int(sys.argv[1]),
    model_type="unigram", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1)
sp = spm.SentencePieceProcessor(model_file="spm.model")
for split in ("train", "dev", "test"):
    for lang in ("en", "de"):
        with open(f"{split}.{lang}") as f, open(f"{split}.sp.{lang}", "w") as out:
            out.writelines(" ".join(sp.encode(l.rstrip("\n"), out_type=str)) + "\n" for l in f)
PY
"$PY" -m fairseq_cli.preprocess --source-lang en --target-lang de --trainpref train.sp \
  --validpref dev.sp --testpref test.sp --destdir bin --joined-dictionary --workers 1 > preprocess.log
fi
# 3. Training (resumed from checkpoints/checkpoint_last.pt if there; HOURS counts all sittings):
# the IWSLT'14 De-En recipe of fairseq's README (its architecture: d 512 -> 256 here,
# 6+6 layers -> 3+3, for 34k pairs and one core), best checkpoint by dev loss.
"$PY" -m fairseq_cli.train bin --arch "${ARCH:-transformer_iwslt_de_en}" --share-all-embeddings \
  --encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 256 --decoder-embed-dim 256 \
  --encoder-ffn-embed-dim 1024 --decoder-ffn-embed-dim 1024 \
  --optimizer adam --adam-betas '(0.9, 0.98)' --clip-norm 0.0 --lr 1e-3 --lr-scheduler inverse_sqrt \
  --warmup-updates 1000 --dropout 0.3 --weight-decay 0.0001 --criterion label_smoothed_cross_entropy \
  --label-smoothing 0.1 --max-tokens 4096 --stop-time-hours "${HOURS:-1.0}" --max-epoch 200 \
  --cpu --num-workers 0 --seed 1 --no-epoch-checkpoints --save-dir checkpoints \
  --log-format simple --log-interval 100 2>&1 | tee -a train.log | grep -E "valid|done"
# 4. Beam 5 on dev and test (fairseq's hub interface; the fork's generate.py measures CUDA memory
# and drops a few long sentences), detokenised, sacreBLEU against the manifests' German.
for split in dev test; do
  "$PY" - $split <<'PY'
import sys
from fairseq.models.transformer import TransformerModel
split = sys.argv[1]
m = TransformerModel.from_pretrained("checkpoints", "checkpoint_best.pt", data_name_or_path="bin",
    bpe="sentencepiece", sentencepiece_model="spm.model", cpu=True).eval()
src = [l.rstrip("\n") for l in open(f"{split}.en")]
hyp = [h for i in range(0, len(src), 32) for h in m.translate(src[i:i + 32], beam=5)]
open(f"hyp.{split}.de", "w").writelines(h + "\n" for h in hyp)
PY
  "$PY" -m sacrebleu $split.de -i hyp.$split.de -m bleu chrf -b -w 2 | paste -sd' ' \
    | sed "s/^/$split BLEU chrF: /" | tee score.$split.txt
done
