"""Score the LlamaIndex citation peer's rows with citewise's own claim scoring.

Runs with CITEWISE's venv from the repo root (it imports eval.reports_eval), unlike the two
llamaindex_*.py scripts beside it:
    .venv/bin/python eval/peers/score_citations.py eval-runs/peers/citations-30.jsonl \
        --dataset ../shared/datasets/scifact
Each cited source becomes a citation whose quote is the cited source chunk (as the stuffed baseline
is scored). What the peer does not produce gets a neutral value and is left out of the table:
no verdict (verdict_accuracy is not reported) and no LLM/non-LLM split (llm_share is not reported).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from eval.datasets import BeirDataset  # noqa: E402
from eval.reports_eval import _aggregate_beir, _gold_sentences, _score_beir  # noqa: E402

DROPPED = ("verdict_accuracy", "llm_share")


def lenient_numbers(answer: str, n_sources: int) -> list[int]:
    """Also count "[Source 2]" and "according to Source 4", which the 1.5B model often writes instead of [2]."""
    found = [int(x) for x in re.findall(r"\bSource\s+(\d+)\b(?!:)", answer)]
    found += [int(x) for grp in re.findall(r"\[([\d,\s]+)\]", answer) for x in grp.split(",") if x.strip()]
    return [n for n in dict.fromkeys(found) if 1 <= n <= n_sources]


def citewise_row(peer: dict, ds: BeirDataset, lenient: bool = False) -> dict:
    by_number = {i + 1: (d, t) for i, (d, t) in enumerate(zip(peer["source_docs"], peer["source_texts"]))}
    cites = [{"doc_source": ds.source(by_number[n][0]),
              "quote": re.sub(r"^Source \d+:\n", "", by_number[n][1]).strip(), "stored_verbatim": True}
             for n in (lenient_numbers(peer["answer"], len(by_number)) if lenient else peer["citation_numbers"])]
    return {"citations": cites, "verdict": None, "seconds": peer["seconds"], "llm_s": 0.0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", type=Path)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/datasets/scifact"))
    ap.add_argument("--lenient", action="store_true",
                    help="count [Source n] / 'Source n' mentions too (default: only [n], as the engine's prompt asks)")
    args = ap.parse_args()
    peer_rows = [json.loads(line) for line in open(args.rows)]
    ds = BeirDataset.load(args.dataset, "train", None)
    sentences = _gold_sentences(ds)
    rows = []
    for peer in peer_rows:
        row = citewise_row(peer, ds, args.lenient)
        row.update(_score_beir(ds, peer["query_id"], row, sentences))
        rows.append(row)
    with_evidence = [r for r in rows if r["gold_docs"]]
    out = {"rows": str(args.rows), "lenient": args.lenient,
           "all": {k: v for k, v in _aggregate_beir(rows).items() if k not in DROPPED},
           "with_gold_evidence": {k: v for k, v in _aggregate_beir(with_evidence).items() if k not in DROPPED},
           "claim_ids": [p["query_id"] for p in peer_rows],
           "claims_without_evidence": [p["query_id"] for p, r in zip(peer_rows, rows) if not r["gold_docs"]]}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
