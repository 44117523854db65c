"""Trains spm_unigram.model as fairseq's speech_to_text gen_vocab does (ids and unigram type), on the
German side of the demo slice, and records SentencePiece's own ids for test sentences in
spm_expected.json. The identity normaliser keeps the model small (nmt_nfkc adds a 240 kB table);
tests/data_tokenizer.rs covers the nmt_nfkc path when Python's sentencepiece is installed."""
import json, pathlib, sentencepiece as spm

here = pathlib.Path(__file__).parent
demo = here / "../../../../data/demo/train.tsv"
texts = [line.rstrip("\n").split("\t")[3] for line in list(open(demo, encoding="utf-8"))[1:]]
(here / "spm_train.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
spm.SentencePieceTrainer.train(
    input=str(here / "spm_train.txt"), model_prefix=str(here / "spm_unigram"), model_type="unigram",
    vocab_size=300, character_coverage=1.0, num_threads=1, normalization_rule_name="identity",
    unk_id=3, bos_id=0, eos_id=2, pad_id=1, minloglevel=2)
(here / "spm_train.txt").unlink()
(here / "spm_unigram.vocab").unlink()
sp = spm.SentencePieceProcessor(model_file=str(here / "spm_unigram.model"))
sentences = ["Ich bin an der Reihe.", "Wie gefällt Ihnen dieses Buch?", "Zürich   liegt  am See!",
             "  Leerzeichen am Rand  ", "Unbekannt: Ωμέγα 漢字", "Geben Sie Ihre E-Mail-Adresse ein."]
expected = [{"text": s, "ids": sp.encode(s), "pieces": sp.encode(s, out_type=str), "decoded": sp.decode(sp.encode(s))}
            for s in sentences]
meta = {"vocab_size": sp.get_piece_size(), "bos": sp.bos_id(), "eos": sp.eos_id(), "pad": sp.pad_id(), "unk": sp.unk_id()}
(here / "spm_expected.json").write_text(json.dumps({"meta": meta, "cases": expected}, ensure_ascii=False, indent=1) + "\n",
                                        encoding="utf-8")
