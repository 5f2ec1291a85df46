"""LlamaIndex citation peer on SciFact claims: CitationQueryEngine over the fusion retriever.

Runs with the PEER venv, not citewise's (see README.md here):
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 nice -n 10 $PEER_VENV/bin/python \
        eval/peers/llamaindex_citations.py --dataset ../shared/datasets/scifact --out eval-runs/peers --limit 30
Each claim's text is asked as the query, verbatim. One JSONL row per claim: answer text, the
[n] citation numbers found in it, the SciFact doc ids of those sources, seconds per answer.
Rows are appended as they finish, so a run cut short keeps what it did and --resume continues it.
Score them with eval/peers/score_citations.py (citewise's venv).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from li_common import GGUF, build_retrievers, fusion, load_beir

TOP_K = 5


def qwen_messages_to_prompt(messages) -> str:
    """Qwen2.5's ChatML; the wrapper's default prompt format is Llama-2's, which Qwen does not know."""
    parts = [f"<|im_start|>{m.role.value}\n{m.content}<|im_end|>\n" for m in messages]
    if not messages or messages[0].role.value != "system":
        parts.insert(0, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n"


def qwen_completion_to_prompt(completion: str) -> str:
    return ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            f"<|im_start|>user\n{completion}<|im_end|>\n<|im_start|>assistant\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=300)
    ap.add_argument("--rows", type=Path, default=None, help="JSONL to append to (default <out>/citations-<limit>.jsonl)")
    args = ap.parse_args()
    import torch
    from llama_index.core.query_engine import CitationQueryEngine
    from llama_index.llms.llama_cpp import LlamaCPP

    torch.set_num_threads(args.threads)
    corpus, queries, qrels, _ = load_beir(args.dataset, "train", args.limit, evidence_only=True)
    args.out.mkdir(parents=True, exist_ok=True)
    vector, bm25, _ = build_retrievers(corpus, args.out / "li-index", TOP_K)
    llm = LlamaCPP(model_path=GGUF, temperature=0.0, max_new_tokens=args.max_new_tokens, context_window=4096,
                   generate_kwargs={"stop": ["<|im_end|>", "<|endoftext|>"]},
                   model_kwargs={"n_threads": args.threads, "n_threads_batch": args.threads, "seed": 0},
                   messages_to_prompt=qwen_messages_to_prompt, completion_to_prompt=qwen_completion_to_prompt,
                   verbose=False)
    engine = CitationQueryEngine(retriever=fusion(vector, bm25, TOP_K), llm=llm)
    path = args.rows or args.out / f"citations-{args.limit}.jsonl"
    done = {json.loads(line)["query_id"] for line in open(path)} if path.exists() else set()
    for qid, claim in queries.items():
        if qid in done:
            continue
        t0 = time.perf_counter()
        response = engine.query(claim)
        seconds = time.perf_counter() - t0
        sources = [n.node.metadata.get("doc_id") for n in response.source_nodes]
        numbers = [int(x) for x in re.findall(r"\[(\d+)\]", str(response))]
        # "[1, 3]" or "[1][3]" both occur; also pick up comma lists inside one bracket
        for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)+)\]", str(response)):
            numbers += [int(x) for x in group.split(",")]
        valid = [n for n in dict.fromkeys(numbers) if 1 <= n <= len(sources)]
        row = {"system": "llamaindex-citation", "query_id": qid, "claim": claim, "answer": str(response),
               "citation_numbers": valid, "invalid_citation_numbers": [n for n in numbers if n not in valid],
               "cited_docs": [sources[n - 1] for n in valid], "source_docs": sources,
               "source_texts": [n.node.get_content() for n in response.source_nodes], "seconds": seconds}
        with open(path, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{qid}: {seconds:.1f}s cited {row['cited_docs']} gold {sorted(qrels[qid])}", flush=True)


if __name__ == "__main__":
    main()
