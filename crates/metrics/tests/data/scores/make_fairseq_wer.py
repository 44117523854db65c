"""Writes CASE/fairseq_wer.json for every case directory here: the corpus WER of CASE/hyp.txt
against CASE/ref.txt as fairseq scores speech recognition in its S2T MuST-C recipe
(`--scoring wer --wer-tokenizer 13a --wer-lowercase --wer-remove-punct`).

The scorer is fairseq's own code, run unchanged: `fairseq/scoring/wer.py` and
`fairseq/scoring/tokenizer.py` of the MTLA authors' fork shipped in the `mtla` 0.3.2 wheel
(`site-packages/experiments/tools/fairseq`), loaded with stand-ins for the three names they
import from the fairseq package (whose `__init__` needs torch): `ChoiceEnum` and
`FairseqDataclass` (annotations of the scorer's config) and `BaseScorer` / `register_scorer`
(which store the config and register the class). Not run by CI: the outputs are committed.
Needs sacrebleu 2.6.0 and mtla 0.3.2 (the oracle venv) and editdistance 0.8.1 (the scorer's
own dependency: `pip install editdistance==0.8.1`).
    python crates/metrics/tests/data/scores/make_fairseq_wer.py
"""
import dataclasses
import importlib.util
import json
import pathlib
import sys
import types

import sacrebleu

assert sacrebleu.__version__ == "2.6.0", sacrebleu.__version__
scoring = pathlib.Path(importlib.util.find_spec("mtla").origin).parents[1]
scoring = scoring / "experiments/tools/fairseq/fairseq/scoring"


class BaseScorer:
    def __init__(self, cfg):
        self.cfg = cfg


@dataclasses.dataclass
class FairseqDataclass:
    pass


stand_ins = {
    "fairseq": {},
    "fairseq.dataclass": {"ChoiceEnum": lambda choices: str, "FairseqDataclass": FairseqDataclass},
    "fairseq.scoring": {"BaseScorer": BaseScorer, "register_scorer": lambda *a, **k: (lambda c: c)},
}
for name, attrs in stand_ins.items():
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attrs)
    sys.modules[name] = module


def load(name):
    spec = importlib.util.spec_from_file_location(f"fairseq.scoring.{name}", scoring / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


load("tokenizer")
wer = load("wer")
here = pathlib.Path(__file__).parent
for case in sorted(p for p in here.iterdir() if (p / "hyp.txt").exists()):
    def read(name):  # as score_reference.py reads files
        with open(case / name, encoding="utf-8") as f:
            return [line.rstrip("\n").rstrip("\r") for line in f]

    cfg = wer.WerScorerConfig(wer_tokenizer="13a", wer_remove_punct=True, wer_lowercase=True)
    scorer = wer.WerScorer(cfg)
    for h, r in zip(read("hyp.txt"), read("ref.txt")):
        scorer.add_string(r, h)
    out = {"distance": scorer.distance, "ref_length": scorer.ref_length, "wer": scorer.score()}
    (case / "fairseq_wer.json").write_text(json.dumps(out, indent=1) + "\n")
    print(case.name, out)
