"""LlamaIndex retrieval peer on SciFact: BM25, vector index and QueryFusionRetriever (RRF).

Runs with the PEER venv, not citewise's (see README.md here):
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice -n 10 $PEER_VENV/bin/python \
        eval/peers/llamaindex_retrieval.py --dataset ../shared/datasets/scifact --out eval-runs/peers
Writes rows.jsonl (one row per system and query: ranked doc ids, seconds) and results.json
(nDCG@10, recall@20, fail@20, latency p50/p95 per system), computed with ranx, whose definitions
citewise's eval/metrics.py follows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from li_common import build_retrievers, doc_ranking, fusion, load_beir

CHUNK_DEPTH = 40  # chunks per retriever: enough to rank 20 documents (a few records have 2 chunks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    corpus, queries, qrels, _ = load_beir(args.dataset, "train", args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    vector, bm25, n_nodes = build_retrievers(corpus, args.out / "li-index", CHUNK_DEPTH)
    index_s = time.perf_counter() - t0
    systems = {"li-bm25": bm25, "li-vector": vector, "li-fusion": fusion(vector, bm25, CHUNK_DEPTH)}
    rows = []
    tag = f"retrieval-{args.limit or 'all'}"
    with open(args.out / f"{tag}-rows.jsonl", "w") as fh:
        for name, retriever in systems.items():
            retriever.retrieve(next(iter(queries.values())))  # warm-up, not timed
            for qid, text in queries.items():
                t = time.perf_counter()
                nodes = retriever.retrieve(text)
                secs = time.perf_counter() - t
                row = {"system": name, "query_id": qid, "docs": doc_ranking(nodes)[:100], "seconds": secs}
                rows.append(row)
                fh.write(json.dumps(row) + "\n")
    results = {"dataset": str(args.dataset), "queries": len(queries), "corpus_documents": len(corpus),
               "nodes": n_nodes, "index_seconds": round(index_s, 1), "chunk_depth": CHUNK_DEPTH,
               "metrics": summarise(qrels, rows, list(systems))}
    (args.out / f"{tag}-results.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def summarise(qrels, rows, systems) -> dict:
    from ranx import Qrels, Run, evaluate
    out = {}
    for name in systems:
        run = {r["query_id"]: r["docs"] for r in rows if r["system"] == name}
        scored = {q: ({d: float(len(docs) - i) for i, d in enumerate(docs)} or {"__none__": 0.0})
                  for q, docs in run.items()}
        m = evaluate(Qrels({q: dict(v) for q, v in qrels.items()}), Run(scored), ["ndcg@10", "recall@20"],
                     make_comparable=True)
        secs = np.asarray([r["seconds"] for r in rows if r["system"] == name])
        out[name] = {"ndcg@10": float(m["ndcg@10"]), "recall@20": float(m["recall@20"]),
                     "fail@20": 1.0 - float(m["recall@20"]),
                     "latency_p50_ms": float(np.percentile(secs, 50)) * 1000,
                     "latency_p95_ms": float(np.percentile(secs, 95)) * 1000}
    return out


def table(results: dict) -> str:
    cols = ["ndcg@10", "recall@20", "fail@20", "latency_p50_ms", "latency_p95_ms"]
    lines = ["| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in results["metrics"].items():
        lines.append(f"| {name} | " + " | ".join(f"{m[c]:.1f}" if c.startswith("lat") else f"{m[c]:.4f}"
                                                 for c in cols) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
