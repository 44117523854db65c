#!/usr/bin/env python3
"""Writes the hypothesis/reference texts of the score parity fixtures, one directory per case
(hyp.txt, ref.txt, optional ref2.txt). Deterministic: a fixed seed and no dependencies.
Run by make_fixtures.sh, which then scores every case with the oracle."""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))


def write_case(name, hyps, *refs):
    os.makedirs(os.path.join(HERE, name), exist_ok=True)
    for file, lines in [("hyp.txt", hyps)] + [
        ("ref.txt" if k == 0 else f"ref{k + 1}.txt", r) for k, r in enumerate(refs)
    ]:
        assert len(lines) == len(hyps), (name, file)
        assert not any(c in line for line in lines for c in "\n\r"), (name, file)
        with open(os.path.join(HERE, name, file), "w", encoding="utf-8", newline="\n") as f:
            f.write("".join(line + "\n" for line in lines))


# The oracle's own example.
write_case(
    "basic",
    ["The cat sat on a mat.", "hello world", "speech translation is very fun"],
    ["The cat sat on the mat.", "Hello, world!", "speech translation is fun"],
)

# Hand-written hard cases for 13a, chrF and the jiwer transforms.
GERMAN = [
    # umlauts, ß, attached punctuation
    ("Die Straße ist heute sehr schön, oder?", "Die Strasse ist heute sehr schön, nicht wahr?"),
    ("Über 3,5 Millionen Menschen grüßen Köln.", "Über 3,5 Mio. Menschen grüßen Köln!"),
    # German and English quotes, apostrophes
    ("Er sagte: „Das ist gut.“", "Er sagte: „Das ist sehr gut“."),
    ('She said "it\'s fine" and left.', "She said “it’s fine” and left."),
    ("Gib's mir, Peter's Buch.", "Gib es mir, Peters Buch."),
    # hyphens, dashes, numbers with decimal points and commas, ranges
    ("Die E-Mail kam 2019-2020 an – zu spät.", "Die E-Mail kam 2019 - 2020 an -- zu spät."),
    ("Es kostet 1.000,50 € bzw. 2.5 Prozent mehr.", "Es kostet 1.000,50 Euro bzw. 2,5 % mehr."),
    ("Version 3.14.15, Seite 42-43.", "Version 3.14.15 , Seite 42 - 43 ."),
    # & and <, HTML entities, <skipped>
    ("Tom & Jerry < Bugs & Co.", "Tom &amp; Jerry &lt; Bugs &amp; Co."),
    ("x &quot;y&quot; &gt; z &amp;quot;", 'x "y" > z &quot;'),
    ("A <skipped> B", "A B"),
    # multiple spaces and tabs, no-break space, thin space, information separator
    ("zu  viele   Leerzeichen\thier \t und\u00a0da", "zu viele Leerzeichen hier und da"),
    ("  führende und folgende Leerzeichen  ", "führende und folgende Leerzeichen"),
    ("Wort\u2009Wort\u001fWort", "Wort Wort Wort"),
    # empty hypothesis
    ("", "Diese Zeile wurde nicht übersetzt."),
    # perfect match
    ("Das ist ein perfekter Satz.", "Das ist ein perfekter Satz."),
    # Unicode punctuation vs symbols (jiwer removes P*, keeps S*: € $ + < = ^ `)
    ("«Ja» — sagte sie… ¿Qué? ¡No! 5 € + 3 $ = 8", "„Ja“ – sagte sie... ¿Qué? ¡No! 5€ + 3$ = 8"),
    # case for lower-casing (Greek final sigma, dotted I, ẞ)
    ("ΟΔΟΣ İstanbul GROẞE Straße", "οδος istanbul große STRASSE"),
    # period/comma tokenization next to digits and letters
    ("a.b,c 1.b a,1 end... (x).", "a . b , c 1 . b a , 1 end ... ( x ) ."),
    ("Nr.5, S.3; vgl. Abs.2", "Nr. 5, S. 3; vgl. Abs. 2"),
    # brackets and slashes
    ("[Hinweis] {a|b} ~x~ 1/2 #tag @user", "[Hinweis] {a | b} ~ x ~ 1 / 2 #tag @user"),
]
write_case("german", [h for h, _ in GERMAN], [r for _, r in GERMAN])

# Brevity penalty: hypotheses much shorter than the references.
BREVITY_REFS = [
    "the committee approved the new budget for the coming financial year after a long debate",
    "researchers at the university published their findings in a leading scientific journal",
    "the train to berlin was delayed by forty minutes because of a signal failure near hanover",
    "we will meet again next week to discuss the remaining open questions in detail",
]
write_case(
    "brevity",
    ["the committee approved the budget", "researchers published their findings",
     "the train was delayed", "we will meet again"],
    BREVITY_REFS,
)

# Perfect match.
write_case("perfect", list(BREVITY_REFS), list(BREVITY_REFS))

# Short segments: no 4-grams at all (BLEU stops at the empty order) and zero 3-gram matches.
write_case(
    "short",
    ["a b", "c d e", "f", "x y"],
    ["a b", "c e d", "f g", "x z y"],
)

# Missing higher-order matches with n-grams present: sacreBLEU's `exp` smoothing.
write_case("smoothing", ["a b c d e", "one two"], ["a b x d e", "one two"])

# No overlap at all (BLEU's early stop, chrF 0).
write_case("no_match", ["foo bar baz", "qux"], ["alpha beta gamma", "delta epsilon"])

# Two references: closest-length ties, n-gram maxima across references, best-reference chrF.
write_case(
    "multiref",
    [
        "the cat is on the mat",
        "there is a cat on the mat",
        "a quick brown fox jumps",
        "Hallo, Welt!",
        "",
        "it is a guide to action which ensures that the military always obeys the commands of the party",
    ],
    [
        "the cat sits on the mat",
        "a cat is on the mat",
        "the quick brown fox jumped over",
        "Hallo Welt",
        "nichts",
        "it is a guide to action that ensures that the military will forever heed party commands",
    ],
    [
        "there is a cat on the mat",
        "the cat is lying on the mat",
        "quick brown fox",
        "Hallo, Welt.",
        "",
        "it is the guiding principle which guarantees the military forces always being under the command of the party",
    ],
)

# Some references are empty (jiwer counts the hypothesis words as insertions).
write_case(
    "empty_ref_line",
    ["hello there", "nothing to see", "", "last line here"],
    ["hello there", "", "", "the last line"],
)

# Every reference is empty: WER/CER undefined (jiwer returns the insertion count instead).
write_case("all_empty_refs", ["some words", "", "more"], ["", "", ""])

rng = random.Random(20240611)

# Alignment ties: small vocabularies make many equally cheap alignments; long lines exercise
# rapidfuzz's multi-word bit-parallel path (more than 64 words).
tie_hyps, tie_refs = [], []
for _ in range(150):
    vocab = [chr(ord("a") + k) for k in range(rng.randint(2, 6))]
    n = rng.choice([rng.randint(1, 8), rng.randint(5, 30), rng.randint(60, 160)])
    ref = [rng.choice(vocab) for _ in range(n)]
    if rng.random() < 0.5:
        hyp = [rng.choice(vocab) for _ in range(max(0, n + rng.randint(-6, 6)))]
    else:
        hyp = list(ref)
        for _ in range(rng.randint(1, max(1, n // 3))):
            op = rng.random()
            pos = rng.randint(0, len(hyp))
            if op < 0.33 and hyp:
                del hyp[min(pos, len(hyp) - 1)]
            elif op < 0.66:
                hyp.insert(pos, rng.choice(vocab))
            elif hyp:
                hyp[min(pos, len(hyp) - 1)] = rng.choice(vocab)
    tie_hyps.append(" ".join(hyp))
    tie_refs.append(" ".join(ref))
write_case("ties", tie_hyps, tie_refs)

# A few hundred lines of varied text: seed sentences (the oracle's examples, English and
# German with punctuation and numbers) recombined, then perturbed into hypotheses and a
# second reference.
SEEDS = [
    "The cat sat on the mat.", "Hello, world!", "speech translation is fun",
    "The meeting starts at 9.30 a.m. on Monday, 3 March.",
    "Prices rose by 2,5 % in the first quarter, the report said.",
    "\"We're not sure,\" she admitted, \"but it's worth a try.\"",
    "The well-known author (born 1952) lives in New York.",
    "Can you hear me? Yes - loud and clear!",
    "Our results: 97.3% accuracy & 0.42 s latency per utterance.",
    "Der Bundestag hat das Gesetz am Donnerstag verabschiedet.",
    "Die Preise für Lebensmittel sind um 3,2 Prozent gestiegen.",
    "Wir müssen über die Zukunft der Energieversorgung sprechen.",
    "Ich weiß nicht, ob das eine gute Idee ist.",
    "Das Spiel endete 2:1 für die Gäste aus München.",
    "„Das ist großartig“, sagte die Ministerin.",
    "Es gibt keine einfache Lösung für dieses Problem.",
    "Thank you very much for your attention.",
    "In 2019, the company's revenue was $4.5 billion.",
    "Please send an e-mail to info@example.com by Friday.",
    "The temperature dropped to -5 degrees overnight.",
    "Self-driving cars are still years away, experts say.",
    "I'd like to thank my colleagues at the lab.",
    "Schüler und Lehrer demonstrierten gemeinsam für bessere Bildung.",
    "Die Straßenbahn fährt alle 10 Minuten, auch am Wochenende.",
    "Übrigens: Öl und Gas werden teurer.",
    "Let's take a short break and continue at 3 o'clock.",
    "Numbers like 1,000,000 and 3.14159 should stay together.",
    "A < B and C > D, but E & F are equal.",
]
WORDS = sorted({w for s in SEEDS for w in s.split()})


def perturb(sentence):
    words = sentence.split()
    for _ in range(rng.randint(0, 4)):
        if not words:
            break
        i = rng.randrange(len(words))
        op = rng.random()
        if op < 0.2:
            del words[i]
        elif op < 0.35:
            words.insert(i, rng.choice(WORDS))
        elif op < 0.5:
            words[i] = rng.choice(WORDS)
        elif op < 0.6 and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
        elif op < 0.7:
            words[i] = words[i].lower() if rng.random() < 0.5 else words[i].upper()
        elif op < 0.8:
            words[i] = words[i].strip(".,!?\"„“:;()")
        elif op < 0.9:
            words[i] = words[i] + rng.choice([",", ".", "!", "?", ";"])
        else:
            words[i] = words[i].replace(".", ",") if "." in words[i] else words[i] + "-" + rng.choice(WORDS)
    sep = rng.choice([" "] * 8 + ["  ", " \t", "\t"])
    return sep.join(words)


corpus_refs, corpus_refs2, corpus_hyps = [], [], []
for _ in range(300):
    ref = " ".join(rng.sample(SEEDS, rng.choice([1, 1, 1, 2])))
    corpus_refs.append(ref)
    corpus_refs2.append(perturb(ref))
    corpus_hyps.append("" if rng.random() < 0.02 else perturb(ref))
write_case("corpus", corpus_hyps, corpus_refs)
write_case("corpus_multiref", corpus_hyps, corpus_refs, corpus_refs2)
