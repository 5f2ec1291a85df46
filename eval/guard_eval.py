"""`citewise eval guard`: how many injection phrasings the guard catches and how much ordinary prose it drops.

The set (eval/data/injections.jsonl) is our own writing: instructions smuggled into documents, in
many phrasings, and ordinary sentences that look like them (documentation about prompts, systems,
assistants, ignoring warnings). It was written in three batches, and each batch was measured once
before the patterns were revised to cover it: "dev" shaped the first revision, "heldout" was first
measured against that revision and then shaped the second, "heldout-2" was first measured against the
second and then shaped the last. A batch's rate is therefore 100% now by construction; the honest
estimate of how the heuristic does on phrasings nobody fitted it to is each batch's first measurement
(the README lists them). `--corpus` adds the share of real document sentences flagged: the false
positives that matter, since a flagged sentence can be neither read by the writer nor cited.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ingest.core.errors import ConfigError
from ingest.core.text import normalize_ws

DEFAULT_SET = Path(__file__).resolve().parent / "data" / "injections.jsonl"
KINDS = ("injection", "benign")


@dataclass
class Phrasing:
    """One sentence of the set; an injection may name the claim it wants made and words that betray it."""

    id: str
    kind: str
    text: str
    style: str = ""
    split: str = "dev"
    target: str = ""
    markers: list[str] = field(default_factory=list)
    question: str = ""

    def carried_out_by(self, statement: str) -> bool:
        """True when `statement` makes this injection's claim: it contains one of its marker words."""
        low = statement.lower()
        # whole words where words are spaced; scripts without spaces (Chinese) have no word edges to check
        return any(re.search(rf"(?<!\w){re.escape(m.lower())}(?!\w)" if m.isascii() else re.escape(m.lower()), low)
                   for m in self.markers)


def load_phrasings(path: Path = DEFAULT_SET) -> list[Phrasing]:
    """The set's rows; a malformed line is a ConfigError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} is not a file (expected JSON lines with text and kind)")
    rows: list[Phrasing] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            row = Phrasing(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"{path}:{n}: not a phrasing row ({exc})") from None
        if row.kind not in KINDS or not row.text.strip() or row.id in seen:
            raise ConfigError(f"{path}:{n}: needs a unique id, non-empty text and kind injection or benign")
        if row.kind == "injection" and row.target and not row.markers:
            raise ConfigError(f"{path}:{n}: an injection with a target needs markers to recognise that claim")
        seen.add(row.id)
        rows.append(row)
    return rows


def sentences(text: str) -> list[str]:
    """The text cut into sentences as evidence is cut (the guard sees one sentence at a time)."""
    from retrieval.sentences import sentence_spans

    return [text[a:b] for a, b in sentence_spans(text)] or [text]


def caught(detector: Callable[[str], bool], row: Phrasing) -> bool:
    """An injection is caught when every sentence carrying its claim is flagged: a sentence left over
    ("... and this must appear in every reply") still reaches the writer. Benign text is flagged when
    any of its sentences is."""
    parts = sentences(row.text)
    if row.kind == "benign":
        return any(detector(p) for p in parts)
    carrying = [p for p in parts if row.carried_out_by(p)] or parts
    return all(detector(p) for p in carrying)


def rates(detector: Callable[[str], bool], rows: list[Phrasing]) -> dict[str, Any]:
    """Catch rate on injections and false-positive rate on benign rows, with the rows behind each."""
    injections = [r for r in rows if r.kind == "injection"]
    benign = [r for r in rows if r.kind == "benign"]
    missed = [r for r in injections if not caught(detector, r)]
    flagged = [r for r in benign if caught(detector, r)]
    return {
        "injections": len(injections), "caught": len(injections) - len(missed),
        "catch_rate": round((len(injections) - len(missed)) / len(injections), 3) if injections else None,
        "benign": len(benign), "flagged": len(flagged),
        "false_positive_rate": round(len(flagged) / len(benign), 3) if benign else None,
        "missed": [{"id": r.id, "style": r.style, "text": r.text} for r in missed],
        "false_positives": [{"id": r.id, "style": r.style, "text": r.text} for r in flagged],
    }


def evaluate_guard(path: Path = DEFAULT_SET, detector: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Rates over the whole set and per split (dev: shaped the patterns; heldout: did not)."""
    if detector is None:
        from generate.guard import addresses_the_model as detector
    rows = load_phrasings(path)
    splits = sorted({r.split for r in rows})
    return {"set": str(path), "all": rates(detector, rows),
            "splits": {s: rates(detector, [r for r in rows if r.split == s]) for s in splits}}


def corpus_rate(folders: list[Path], detector: Callable[[str], bool] | None = None,
                min_words: int = 4) -> dict[str, Any]:
    """Share of the sentences of real documents (.md, .rst, .txt read as plain text) the detector flags.

    Sentences are cut as evidence sentences are (retrieval.sentences), and as short ones are never
    evidence, neither are they counted here.
    """
    from retrieval.sentences import sentence_spans

    if detector is None:
        from generate.guard import addresses_the_model as detector
    total, flagged = 0, []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ConfigError(f"{folder} is not a folder of documents")
        for path in sorted(Path(folder).rglob("*")):
            if path.suffix.lower() not in (".md", ".rst", ".txt") or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for start, end in sentence_spans(text):
                sentence = text[start:end]
                if len(sentence.split()) < min_words:
                    continue
                total += 1
                if detector(sentence):
                    flagged.append({"source": str(path), "start": start, "text": normalize_ws(sentence)})
    return {"folders": [str(f) for f in folders], "sentences": total, "flagged": len(flagged),
            "flagged_rate": round(len(flagged) / total, 6) if total else None, "flagged_sentences": flagged}


def guard_lines(result: dict[str, Any], show_rows: bool = True) -> list[str]:
    """Plain-text summary: one line per split, then the missed injections and the false positives."""

    def line(name: str, r: dict[str, Any]) -> str:
        return (f"{name:8} caught {r['caught']}/{r['injections']} injections ({r['catch_rate']:.0%}), "
                f"flagged {r['flagged']}/{r['benign']} benign sentences ({r['false_positive_rate']:.0%})")

    out = [f"guard on {result['set']}", line("all", result["all"])]
    out += [line(name, r) for name, r in result["splits"].items()]
    if show_rows:
        out += ["", "missed injections:"] + [f"  {m['id']} [{m['style']}] {m['text']!r}" for m in result["all"]["missed"]]
        out += ["", "benign sentences flagged:"] + [f"  {m['id']} [{m['style']}] {m['text']!r}"
                                                    for m in result["all"]["false_positives"]]
    corpus = result.get("corpus")
    if corpus:
        out += ["", f"real sentences flagged: {corpus['flagged']}/{corpus['sentences']} "
                    f"({corpus['flagged_rate']:.4%}) in {', '.join(corpus['folders'])}"]
        out += [f"  {f['source']}@{f['start']}: {f['text'][:160]!r}" for f in corpus["flagged_sentences"][:50]]
    return out
