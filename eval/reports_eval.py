"""`citewise eval reports`: the whole ask path against the stuffed-prompt baseline, same model, one run.

SciFact claims (BEIR layout with gold evidence) are checked as claims: document- and
sentence-level citation precision/recall, verdict accuracy, and the rate of quotes that are not
verbatim in the dataset's own text. squad-wiki questions are asked as questions: answer and
citation correctness on answerable ones, and how often unanswerable ones are declined.
With `off_topic`, another dataset's questions (or claims) are also asked of this dataset's index,
which cannot answer them: how often each system says so instead of citing whatever it found.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from generate.engine import Engine
from generate.task import Task
from ingest.core.settings import Settings
from eval.datasets import BeirDataset, SquadWikiDataset
from eval.environment import environment
from eval.fold_scorers import TrainMode, training_lines
from eval.trained_researchers import TRAINED, TrainedResearchers, check_trained_options
from eval.index_cache import prepared_index
from eval.metrics import percentiles
from eval.paired import paired_intervals, paired_lines
from eval.run_folder import RunFolder
from eval.shared_writes import SharedWrites
from eval.stuffed_baseline import StuffedBaseline
from ingest.core.errors import InvalidRequestError
from ingest.core.progress import NullProgress, Progress
from ingest.core.text import normalize_ws

#: Research settings that change only how a draft is verified: systems differing in these alone share writes.
VERIFICATION_ONLY = {"relevance_scope", "citation_choice"}

SYSTEMS = {"citewise": "research loop, evidence sentences, constrained writer, verified quotes",
           "citewise-no-lookup": "citewise decoding one token per forward pass (models.lookup_draft = 0)",
           "citewise-exact": "citewise on batch-invariant llama.cpp kernels (models.batch_invariant = true): prompt "
                             "lookup writes exactly what one-token decoding writes",
           "citewise-exact-no-lookup": "citewise-exact decoding one new token per forward pass (lookup_draft = 0)",
           "citewise-passage": "citewise whose citations are read by passage: a quote bears on the question when a "
                               "sentence of its passage shown does (research.relevance_scope = passage), and a "
                               "citation shows the sentence of the numbered one's passage closest to the statement "
                               "(research.citation_choice = passage)",
           "citewise-repoint": "citewise whose citations show the sentence of the numbered one's passage closest "
                               "to the statement (research.citation_choice = passage); relevance still read from "
                               "the sentence alone",
           "citewise-located": "citewise whose statement, when no sentence it numbered passes verification, cites "
                               "the shown sentence holding its names and numbers (research.citation_choice = "
                               "specifics)",
           "citewise-numbered": "citewise whose statements cite only the sentences the writer numbered, never a "
                                "located one (research.citation_choice = writer)",
           "citewise-server": "citewise with its models on the OpenAI-compatible model server at --model-server "
                              "(models.backend = openai): the HTTP hop against the embedded models",
           "citewise-trained": "citewise with a scorer this run trained (--train-folds or --train synthetic) "
                               "choosing evidence and deciding when the documents do not answer",
           "citewise-reranked": "citewise whose searches the same held-out scorer reranks (research.rerank = "
                                "[\"trained\"]); evidence and declines stay with the cosine thresholds",
           "citewise-scored-evidence": "citewise whose evidence sentences the same held-out scorer ranks "
                                       "(research.use_trained_scorer = evidence); stopping, declines and "
                                       "citations stay with the cosine thresholds",
           "citewise-ranked-evidence": "citewise whose evidence sentences the evidence ranking trained with the "
                                       "same held-out scorer orders (research.evidence_ranking = auto; the "
                                       "scorer's own probabilities unused); everything else as citewise",
           "citewise-corroborated": "citewise whose cited statements also cite the other sentences of their "
                                    "cited passages that the corroboration model trained with the same held-out "
                                    "scorer finds to be evidence too (research.corroboration = auto); everything "
                                    "else as citewise",
           "citewise-as-trained": "citewise as an index answers after `citewise train` with default settings, each "
                                  "use from the same held-out scorer: searches over the corpus as it embeds it, "
                                  "the evidence ranking and corroborating citations where their held-out checks "
                                  "passed; stopping and declines on the cosine thresholds (the run's vectors are "
                                  "used without the publish-time comparison that decides whether an index keeps them)",
           "citewise-reembedded": "citewise whose searches' dense part reads the corpus as the same held-out "
                                  "scorer embeds it (search.dense_vectors = trained); evidence, declines and "
                                  "citations stay with the cosine thresholds",
           "stuffed": "top-5 hybrid chunks stuffed into one prompt, free-text answer with [n] citations"}
GOLD_VERDICT = {"SUPPORT": "supports", "CONTRADICT": "contradicts"}
#: The quality metrics a paired comparison reads (counts and seconds are not what a default is chosen by).
PAIRED_BEIR = ["doc_citation_precision", "doc_citation_recall", "sentence_citation_recall",
               "sentence_citation_precision", "no_citation_rate", "verdict_accuracy"]
PAIRED_SQUAD = ["answer_correct", "citation_correct", "declined_unanswerable", "declined_answerable"]


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w%.]+", " ", text.lower()).split())


def sentence_matches(quote: str, gold: str) -> bool:
    """Our splitter and the dataset's may cut sentences differently: containment or strong overlap."""
    q, g = norm(quote), norm(gold)
    if not q or not g:
        return False
    if q in g or g in q:
        return True
    qs, gs = set(q.split()), set(g.split())
    return len(qs & gs) / len(qs | gs) >= 0.6


def run_reports(dataset_dir: Path, settings: Settings, systems: list[str], limit: int | None = None,
                out_root: Path = Path("eval-runs"), resume: Path | None = None,
                progress: Progress | None = None, off_topic: Path | None = None,
                off_topic_limit: int = 25, split: str | None = None,
                off_topic_split: str | None = None, train_folds: int | None = None,
                train: TrainMode | None = None,
                model_server: str | None = None) -> tuple[RunFolder, dict[str, Any]]:
    """`split` names the qrels of a BEIR-layout dataset (default train; a squad-wiki folder has none),
    `off_topic_split` those of a BEIR-layout off-topic dataset. `citewise-trained` answers each item with a
    scorer that never saw it: the one trained on the other folds' labels, or on synthetic data only."""
    caps = dict(_cap(s) for s in systems)
    systems = list(caps)
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise InvalidRequestError(f"unknown systems {unknown}; choose from {', '.join(SYSTEMS)} (NAME@N caps NAME "
                                  "at the first N items)")
    check_trained_options(systems, train_folds, train)
    if ("citewise-server" in systems) != bool(model_server):
        raise InvalidRequestError("citewise-server needs --model-server URL (an OpenAI API root such as "
                                  "http://127.0.0.1:8080/v1), and --model-server applies to it alone")
    progress = progress or NullProgress()
    started = time.perf_counter()
    env = environment(settings)  # the commit and packages the run starts with, not ends with
    # The default system and the variants that change verification alone ask the writer the same prompts.
    models = Engine(settings)
    shared = SharedWrites(models.writer_model)
    comps = Engine(settings, embedder=models.embedder, fast_model=models.fast_model, writer_model=shared)
    # Read before any index is built, so a wrong off-topic path or split fails at once.
    foreign = _off_topic_items(off_topic, off_topic_limit, off_topic_split) if off_topic else []
    ds, items, task, index_path = dataset_items(comps, dataset_dir, split, limit, out_root, progress)
    is_beir = isinstance(ds, BeirDataset)
    work = [(qid, text, task) for qid, text in items]
    commit = env["git_commit"]
    folder = RunFolder(resume, commit) if resume else RunFolder.new(out_root, "reports", ds.name, commit)
    done = folder.done()
    shared.keep_in(folder.path / "writes.jsonl")
    gold_sentences = _gold_sentences(ds) if is_beir else {}
    with comps.open_index(index_path) as index:
        researchers = {"citewise": comps.researcher(index)}
        variants: dict[str, tuple[str, dict[str, Any]]] = {
            "citewise-no-lookup": ("models", {"lookup_draft": 0}),
            "citewise-exact": ("models", {"batch_invariant": True}),
            "citewise-exact-no-lookup": ("models", {"batch_invariant": True, "lookup_draft": 0}),
            "citewise-server": ("models", {"backend": "openai", "base_url": model_server}),
            "citewise-passage": ("research", {"relevance_scope": "passage", "citation_choice": "passage"}),
            "citewise-repoint": ("research", {"citation_choice": "passage"}),
            "citewise-located": ("research", {"citation_choice": "specifics"}),
            "citewise-numbered": ("research", {"citation_choice": "writer"})}
        for name, (area, values) in variants.items():
            if name in systems:
                variant = settings.model_copy(deep=True)
                for key, value in values.items():
                    setattr(getattr(variant, area), key, value)
                same_models = area == "research"
                writes = shared if same_models and set(values) <= VERIFICATION_ONLY else None
                researchers[name] = Engine(variant, embedder=comps.embedder, writer_model=writes,
                                           fast_model=comps.fast_model if same_models else None).researcher(index)
        baseline = StuffedBaseline(comps.searcher(index), comps.writer_model, 5, settings.research.writer_max_tokens)
        trained = TrainedResearchers(comps, index, settings, folder.path / "scorers", progress, dataset_dir,
                                      split or "train", train_folds, train,
                                      list(ds.queries) if is_beir else [q.id for q in ds.questions])
        for researcher in researchers.values():
            researcher.warm_up()
        for name in systems:
            mine = (work[: caps[name]] if caps[name] is not None else work) + foreign
            todo = [(qid, text, t) for qid, text, t in mine if (name, qid) not in done]
            progress.stage(name, len(mine))
            progress.advance(name, len(mine) - len(todo))
            for qid, text, item_task in todo:
                t0 = time.perf_counter()
                if name in researchers or name in TRAINED:
                    chosen = trained.for_item(qid, name) if name in TRAINED \
                        else researchers[name]
                    report = chosen.run(text, Task(item_task))
                    row = _citewise_row(report, index)
                else:
                    answer = baseline.run(text, task=item_task)
                    row = _baseline_row(answer, index)
                replayed = shared.take_replayed_s()
                row.update({"system": name, "query_id": qid, "seconds": time.perf_counter() - t0 + replayed})
                if replayed:
                    row["write_replayed"] = True
                if qid.startswith(OFF_TOPIC):
                    row.update({"off_topic": True, "task": item_task})
                else:
                    row.update(_score_beir(ds, qid, row, gold_sentences) if is_beir else _score_squad(ds, qid, row))
                folder.append(row)
                progress.advance(name)
    rows = [r for r in folder.rows() if r["system"] in systems]
    table = {}
    for s in systems:
        mine_rows = [r for r in rows if r["system"] == s]
        own = [r for r in mine_rows if not r.get("off_topic")]
        # A system run on the off-topic items only (NAME@0) has no dataset metrics, not zeros.
        table[s] = (_aggregate_beir if is_beir else _aggregate_squad)(own) if own else {}
        off_rows = [r for r in mine_rows if r.get("off_topic")]
        if off_rows:
            table[s].update({"off_topic": len(off_rows), **_declined(off_rows)})
    aggregate = _aggregate_beir if is_beir else _aggregate_squad
    paired = paired_intervals([r for r in rows if not r.get("off_topic")], systems[0], systems[1:], aggregate,
                              PAIRED_BEIR if is_beir else PAIRED_SQUAD)
    for name, metrics in paired_intervals([r for r in rows if r.get("off_topic")], systems[0], systems[1:],
                                          _declined, ["declined_off_topic"]).items():
        paired.setdefault(name, {}).update(metrics)
    scorers = trained.scorers.described()
    results = {"kind": "reports", "dataset": str(dataset_dir), "split": ds.split if is_beir else None, "task": task,
               "questions": len(items),
               "off_topic": {"dataset": str(off_topic), "items": len(foreign)} if off_topic else None,
               "index": str(index_path), "systems": {s: SYSTEMS[s] for s in systems}, "metrics": table,
               "writer": settings.models.writer, "model_server": model_server,
               "wall_seconds": round(time.perf_counter() - started, 1),
               "training": {"folds": train_folds, "mode": train, "scorers": scorers} if scorers else None,
               "paired": {"baseline": systems[0], "systems": paired}, "environment": env,
               "writes_replayed": {s: n for s in systems
                                   if (n := sum(1 for r in rows if r["system"] == s and r.get("write_replayed")))}}
    folder.write_results(results, reports_markdown(results))
    return folder, results


def dataset_items(comps: Engine, dataset_dir: Path, split: str | None, limit: int | None, out_root: Path,
                  progress: Progress) -> tuple[Any, list[tuple[str, str]], str, Path]:
    """(dataset, its items as (id, text), the task they are asked as, the index over its documents): claims
    with gold evidence from a BEIR folder, checked; questions from a squad-wiki folder, answerable and
    unanswerable alternating, answered. Refuses a split without evidence before building an index."""
    if (Path(dataset_dir) / "corpus.jsonl").exists():
        ds: Any = BeirDataset.load(dataset_dir, split or "train")
        # Claims with gold evidence only: a claim the corpus neither supports nor contradicts has no
        # citation to find (qrels list documents for those too). Checked before any index is built.
        items = [(qid, text) for qid, text in ds.queries.items() if ds.query_metadata[qid].get("evidence")]
        if not items:
            raise InvalidRequestError(f"{dataset_dir}: no query of split {split or 'train'!r} has evidence in its "
                                      "metadata (SciFact-style claims), so there are no citations to score")
        items = items[:limit] if limit else items
        docs = ds.documents()
        index_path = prepared_index(comps, out_root, f"beir-{ds.name}-{ds.fingerprint()}",
                                    lambda ix: comps.ingestor(ix, progress).ingest_documents(docs))
        task = "check"
    else:
        _no_split(dataset_dir, split, "--split")
        ds = SquadWikiDataset.load(dataset_dir)
        index_path = prepared_index(comps, out_root, f"squad-{ds.name}-{ds.fingerprint()}",
                                    lambda ix: comps.ingestor(ix, progress).ingest_paths([ds.docs_dir]))
        items = _balanced([(q.id, q.question, q.answerable) for q in ds.questions], limit)
        task = "answer"
    return ds, items, task, index_path


#: Query ids of off-topic items start with this, so a resumed run keeps them apart from the dataset's own.
OFF_TOPIC = "off-topic:"


def _off_topic_items(path: Path, limit: int, split: str | None = None) -> list[tuple[str, str, str]]:
    """The first `limit` claims with evidence (BEIR layout) or answerable questions (squad-wiki) of another dataset."""
    if (Path(path) / "corpus.jsonl").exists():
        other: Any = BeirDataset.load(path, split or "train")
        found = [(qid, text, "check") for qid, text in other.queries.items() if other.query_metadata[qid].get("evidence")]
    else:
        _no_split(path, split, "--off-topic-split")
        other = SquadWikiDataset.load(path)
        found = [(q.id, q.question, "answer") for q in other.questions if q.answerable]
    return [(f"{OFF_TOPIC}{other.name}:{qid}", text, task) for qid, text, task in found[:limit]]


def _no_split(path: Path, split: str | None, option: str) -> None:
    """A split given for a squad-wiki folder would be ignored without a word: refused instead."""
    if split is not None:
        raise InvalidRequestError(f"{option} {split!r}: {path} is a squad-wiki folder (docs/, questions.jsonl), "
                                  "which has no splits; --split applies to BEIR-layout datasets")


def _cap(name: str) -> tuple[str, int | None]:
    """`stuffed@30` -> ("stuffed", 30): a slow system on the first N items of the same list."""
    base, _, n = name.partition("@")
    if n and not n.isdigit():
        raise InvalidRequestError(f"{name!r}: the part after @ must be a number of items")
    return base.strip(), int(n) if n else None


def _balanced(questions: list[tuple[str, str, bool]], limit: int | None) -> list[tuple[str, str]]:
    """Answerable and unanswerable questions interleaved in file order, so any prefix is balanced."""
    yes = [(i, q) for i, q, a in questions if a]
    no = [(i, q) for i, q, a in questions if not a]
    mixed = [x for pair in zip(yes, no) for x in pair] + yes[len(no):] + no[len(yes):]
    return mixed[:limit] if limit else mixed


def _citewise_row(report: Any, index: Any) -> dict[str, Any]:
    cites = [{"doc_source": c.source, "quote": c.quote, "start": c.start, "end": c.end,
              "stored_verbatim": _stored_verbatim(index, c.doc_id, c.quote, c.start, c.end),
              "corroborating": c.corroborating, "located": c.located}
             for st in report.statements for c in st.citations]
    t = report.timings
    return {"answered": report.answered, "answer": report.answer, "verdict": report.verdict, "citations": cites,
            "unsupported": len(report.unsupported), "prefill_s": t["prefill_s"], "decode_s": t["decode_s"],
            "llm_s": t["llm_s"], "stop": report.stop_reason, "tokens": report.tokens, "timings": dict(t)}


def _baseline_row(answer: Any, index: Any) -> dict[str, Any]:
    c = answer.completion
    cites = [{"doc_source": h.chunk.source, "quote": h.chunk.text, "start": h.chunk.start, "end": h.chunk.end,
              "stored_verbatim": True} for h in answer.cited]
    declined = bool(re.search(r"(do not|does not|don't|doesn't|cannot|can't) (answer|provide|mention|contain|say)"
                              r"|not enough (evidence|information)|no information", answer.answer.lower()))
    return {"answered": not declined, "answer": answer.answer, "verdict": answer.verdict, "citations": cites,
            "unsupported": 0, "prefill_s": c.prefill_s, "decode_s": c.decode_s, "llm_s": c.prefill_s + c.decode_s,
            "stop": "", "tokens": {"prompt": c.prompt_tokens, "completion": c.completion_tokens}}


def _stored_verbatim(index: Any, doc_id: str, quote: str, start: int, end: int) -> bool:
    text = index.document_text(doc_id) or ""
    return normalize_ws(text[start:end]) == normalize_ws(quote)


def _gold_sentences(ds: BeirDataset) -> dict[str, list[str]]:
    wanted = {d for meta in ds.query_metadata.values() for d in (meta.get("evidence") or {})}
    out: dict[str, list[str]] = {}
    with open(ds.path / "corpus.jsonl") as fh:
        for line in fh:
            d = json.loads(line)
            if str(d["_id"]) in wanted:
                out[str(d["_id"])] = list((d.get("metadata") or {}).get("sentences") or [])
    return out


def _score_beir(ds: BeirDataset, qid: str, row: dict[str, Any], sentences: dict[str, list[str]]) -> dict[str, Any]:
    evidence = ds.query_metadata[qid].get("evidence") or {}
    gold_docs = set(evidence)
    cited_docs = [BeirDataset.doc_id(c["doc_source"]) for c in row["citations"]]
    gold_sents, hit_sents, quotes, gold_quotes = sentence_hits(row["citations"], evidence, sentences)
    labels = {e.get("label") for e in evidence.values()}
    gold_verdict = GOLD_VERDICT.get(labels.pop()) if len(labels) == 1 else None
    corpus_text = {d: norm(ds.corpus[d]["title"] + " " + ds.corpus[d]["text"]) for d in set(cited_docs)
                   if d in ds.corpus}
    non_verbatim = sum(1 for c, d in zip(row["citations"], cited_docs)
                       if norm(c["quote"]) not in corpus_text.get(d, "") or not c["stored_verbatim"])
    return {"cited_docs": cited_docs, "gold_docs": sorted(gold_docs),
            "cited_gold": sum(1 for d in set(cited_docs) if d in gold_docs),
            "cited_distinct": len(set(cited_docs)), "gold_sentences": gold_sents,
            "gold_sentences_cited": hit_sents, "quotes": quotes, "gold_quotes": gold_quotes,
            "gold_verdict": gold_verdict, "non_verbatim": non_verbatim}


def sentence_hits(citations: list[dict[str, Any]], evidence: dict[str, Any],
                  sentences: dict[str, list[str]]) -> tuple[int, int, int, int]:
    """(gold sentences, gold sentences cited, distinct quotes, quotes that are a gold sentence): recall says
    how much of the rationale a report shows, precision how much of what it shows is rationale, so citing
    more sentences cannot pass for finding the right ones."""
    gold = [(d, i) for d, e in evidence.items() for i in e.get("sentences", []) if i < len(sentences.get(d, []))]
    missing = sum(len(e.get("sentences", [])) for e in evidence.values()) - len(gold)
    quotes = list({(BeirDataset.doc_id(c["doc_source"]), c["quote"]) for c in citations})

    def same(q: tuple[str, str], g: tuple[str, int]) -> bool:
        return q[0] == g[0] and sentence_matches(q[1], sentences[g[0]][g[1]])

    return (len(gold) + missing, sum(1 for g in gold if any(same(q, g) for q in quotes)), len(quotes),
            sum(1 for q in quotes if any(same(q, g) for g in gold)))


def _score_squad(ds: SquadWikiDataset, qid: str, row: dict[str, Any]) -> dict[str, Any]:
    q = next(q for q in ds.questions if q.id == qid)
    answers = [norm(a) for a in q.answers]
    correct = row["answered"] and any(a and a in norm(row["answer"]) for a in answers)
    cite_ok = any(a and a in norm(c["quote"]) for c in row["citations"] for a in answers)
    return {"answerable": q.answerable, "answer_correct": bool(correct), "citation_correct": bool(cite_ok)}


def _timing_stats(rows: list[dict[str, Any]]) -> dict[str, float]:
    secs = percentiles([r["seconds"] for r in rows])
    llm = sum(r["llm_s"] for r in rows)
    total = sum(r["seconds"] for r in rows) or 1.0
    decode_s = sum(r["decode_s"] for r in rows)
    generated = sum((r.get("tokens") or {}).get("completion", 0) for r in rows)
    return {"seconds_p50": secs["p50"], "seconds_p95": secs["p95"], "llm_share": llm / total,
            "decode_tokens_per_s": generated / decode_s if decode_s else 0.0}


def _aggregate_beir(rows: list[dict[str, Any]]) -> dict[str, float]:
    n = max(len(rows), 1)
    cited = sum(r["cited_distinct"] for r in rows)
    quotes = sum(len(r["citations"]) for r in rows)
    judged = [r for r in rows if r["gold_verdict"]]
    return {
        "claims": len(rows),
        "doc_citation_precision": sum(r["cited_gold"] for r in rows) / cited if cited else 0.0,
        "doc_citation_recall": sum(r["cited_gold"] / max(len(r["gold_docs"]), 1) for r in rows) / n,
        "sentence_citation_recall": sum(r["gold_sentences_cited"] for r in rows) / max(
            sum(r["gold_sentences"] for r in rows), 1),
        # Rows written before quotes were counted have no "quotes": the metric is left out, not zero.
        **({"sentence_citation_precision": sum(r["gold_quotes"] for r in rows) / max(sum(r["quotes"] for r in rows), 1)}
           if all("quotes" in r for r in rows) else {}),
        "no_citation_rate": sum(1 for r in rows if not r["citations"]) / n,
        "verdict_accuracy": sum(1 for r in judged if r["verdict"] == r["gold_verdict"]) / max(len(judged), 1),
        "non_verbatim_quote_rate": sum(r["non_verbatim"] for r in rows) / quotes if quotes else 0.0,
        **_timing_stats(rows),
    }


def _aggregate_squad(rows: list[dict[str, Any]]) -> dict[str, float]:
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    cited_rows = [r for r in ans if r["citations"]]
    return {
        "answerable": len(ans), "unanswerable": len(una),
        "answer_correct": sum(r["answer_correct"] for r in ans) / max(len(ans), 1),
        "citation_correct": sum(r["citation_correct"] for r in ans) / max(len(ans), 1),
        "citation_correct_when_cited": sum(r["citation_correct"] for r in cited_rows) / max(len(cited_rows), 1),
        "declined_unanswerable": sum(1 for r in una if not r["answered"]) / max(len(una), 1),
        "declined_answerable": sum(1 for r in ans if not r["answered"]) / max(len(ans), 1),
        **_timing_stats(rows),
    }


def _declined(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Off-topic items: the share a system declined instead of citing whatever it found."""
    return {"declined_off_topic": sum(not r["answered"] for r in rows) / max(len(rows), 1)}


def reports_markdown(results: dict[str, Any]) -> str:
    metrics = results["metrics"]
    cols = list(dict.fromkeys(c for m in metrics.values() for c in m))
    lines = [f"# Reports: {results['dataset']} ({results['questions']} {results['task']} items, writer "
             f"{results['writer']})", "", "| system | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | " + " | ".join(_cell(m.get(c)) for c in cols) + " |")
    lines += ["", *[f"- **{s}**: {d}" for s, d in results["systems"].items()], ""]
    if results.get("off_topic"):
        lines += [f"Off-topic: {results['off_topic']['items']} items of {results['off_topic']['dataset']} asked of "
                  "this index, which does not cover them; declined_off_topic is the share a system declined.", ""]
    for name, n in (results.get("writes_replayed") or {}).items():
        lines.append(f"- {name}: {n} items judge a draft written once for the same prompt, by an earlier "
                     "system or an earlier session of this run (the systems differ only in verification); their "
                     "seconds count that write's measured time.")
    lines += [""] if results.get("writes_replayed") else []
    lines += training_lines(results.get("training"))
    paired = results.get("paired") or {}
    lines += paired_lines(paired.get("systems") or {}, paired.get("baseline", ""))
    lines += [f"Whole run: {results['wall_seconds']} s; commit {results['environment']['git_commit']}.", ""]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)
