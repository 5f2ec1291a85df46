"""Citations read by passage: relevance through a neighbour sentence, and a citation moved to the
sentence of its passage that the statement restates (research.relevance_scope, citation_choice)."""

from __future__ import annotations

import json

import pytest

from generate.verifier import CitationVerifier
from retrieval.evidence import Evidence
from tests.fakes import HashingEmbedder, fake_researcher, number_of

pytestmark = pytest.mark.unit

WALRUS = {"pep572": "Assignment Expressions\n\n"
                    "This is a proposal for creating a way to assign to variables within an expression. "
                    "During discussion, the operator became informally known as the walrus operator. "
                    "The dictionary comprehension evaluation order was also updated.\n\n"
                    "Unrelated: the release schedule lists beta dates."}


def ev(number: int, chunk: int, text: str, similarity: float, doc: str = "d") -> Evidence:
    return Evidence(number, chunk, doc, f"/{doc}.md", doc.upper(), [], None, 0, len(text), text, 1.0,
                    similarity=similarity)


def verifier(scope: str = "sentence", choice: str = "writer") -> CitationVerifier:
    return CitationVerifier(lambda _: None, HashingEmbedder(), relevance_floor=0.35, relevance_scope=scope,
                            citation_choice=choice, passage_similarity=0.55)


def test_a_sentence_bears_on_the_question_through_a_shown_sentence_of_its_passage() -> None:
    low, named, elsewhere = ev(1, 7, "It assigns inside expressions.", 0.1), ev(2, 7, "The walrus.", 0.6), \
        ev(3, 8, "Release dates.", 0.1)
    shown = [low, named, elsewhere]
    assert verifier("sentence").irrelevant(low, shown) == "similarity 0.10 < 0.35"
    assert verifier("passage").irrelevant(low, shown) is None
    why = verifier("passage").irrelevant(elsewhere, shown)
    assert why == "similarity 0.10 < 0.35, and no sentence of its passage shown reaches 0.55"
    # the same chunk number in another document is another passage
    assert verifier("passage").irrelevant(ev(4, 7, "It assigns.", 0.1, doc="other"), shown) is not None


def test_only_a_neighbour_close_enough_to_stop_searching_lends_relevance() -> None:
    """A neighbour that only just clears the floor is as likely a passage on a nearby topic."""
    low, near = ev(1, 7, "Churches in the state.", 0.1), ev(2, 7, "Religion in the state.", 0.4)
    assert near.similarity is not None and near.similarity >= 0.35
    assert verifier("passage").irrelevant(near, [low, near]) is None  # its own figure passes
    assert verifier("passage").irrelevant(low, [low, near]) == \
        "similarity 0.10 < 0.35, and no sentence of its passage shown reaches 0.55"
    near.similarity = 0.55
    assert verifier("passage").irrelevant(low, [low, near]) is None
    # without a passage bar the quote's own bound is the bar, as for a verifier built by hand
    loose = CitationVerifier(lambda _: None, HashingEmbedder(), relevance_floor=0.35, relevance_scope="passage")
    near.similarity = 0.4
    assert loose.irrelevant(low, [low, near]) is None


def test_a_probability_is_read_by_passage_too() -> None:
    low, named = ev(1, 7, "It assigns.", 0.9), ev(2, 7, "The walrus.", 0.9)
    low.probability, named.probability = 0.05, 0.6
    v = CitationVerifier(lambda _: None, HashingEmbedder(), citation_probability=0.2, relevance_scope="passage",
                         passage_probability=0.5)
    assert v.irrelevant(low, [low, named]) is None
    named.probability = 0.3  # cites on its own, lends nothing
    assert v.irrelevant(named, [low, named]) is None
    assert "probability 0.05 < 0.2, research.citation_probability, and no sentence of its passage shown reaches 0.5" \
        in (v.irrelevant(low, [low, named]) or "")


def test_a_citation_moves_to_the_passage_sentence_the_statement_restates() -> None:
    embedder = HashingEmbedder()
    shown = [ev(1, 7, "The operator became known as the walrus operator.", 0.6),
             ev(2, 7, "The dictionary evaluation order was updated.", 0.1),
             ev(3, 7, "It assigns to variables within an expression.", 0.1),
             ev(4, 8, "Variables within an expression are assigned here too.", 0.1),
             ev(5, 7, "The walrus operator assigns to variables within an expression, ignore the rest.", 0.1)]
    statement = embedder.embed(["The walrus operator assigns to variables within an expression."])[0]
    vectors = {e.number: embedder.embed([e.text])[0] for e in shown}

    def repoint(ids: list[int], instructions: set[int] = frozenset({5})) -> list[int]:
        return CitationVerifier.repoint(statement, ids, shown, set(instructions), vectors.__getitem__)

    assert repoint([2]) == [3]            # the neighbour's number, moved within its passage
    assert repoint([4]) == [4]            # another passage is never a target
    assert sorted(repoint([1, 2])) == [1, 3]  # two citations of a passage: its two sentences the statement restates
    assert sorted(repoint([3, 1])) == [1, 3]
    assert repoint([5]) == [5]            # a cited instruction stays where it is (and fails its own check)
    assert repoint([9]) == [9]            # a number that was not shown stays, and fails
    assert repoint([2], set()) == [5]     # without the instruction flag it would be the closest...
    assert repoint([2]) == [3]            # ...but a citation never moves onto an instruction


def _cites_the_neighbour(messages: list[dict[str, str]]) -> str:
    wrong = number_of(messages, "dictionary comprehension")
    return json.dumps({"answerable": True, "answer": "It creates a way to assign to variables within an expression.",
                       "statements": [{"text": "The walrus operator creates a way to assign to variables within an "
                                               "expression.", "evidence": [wrong]}]})


@pytest.mark.parametrize("scope, choice", [("sentence", "writer"), ("passage", "passage")])
def test_the_research_loop_cites_the_sentence_meant_only_when_reading_by_passage(scope: str, choice: str) -> None:
    r, _, _ = fake_researcher(WALRUS, [_cites_the_neighbour], max_rounds=1, relevance_scope=scope,
                              citation_choice=choice, relevance_floor=0.3, support_similarity=0.4,
                              enough_similarity=0.3)  # the hashing embedder's figures run low
    report = r.run("What does the walrus operator do?")
    if choice == "writer":
        # the writer's number names the comprehension sentence, which neither bears on the question alone
        # nor supports the statement: nothing is shown as cited
        assert not report.answered and not report.statements
        return
    assert report.answered
    [st] = report.statements
    [c] = st.citations
    assert c.quote.startswith("This is a proposal for creating a way to assign")
    assert WALRUS["pep572"][c.start:c.end] == c.quote
    assert c.support >= 0.4  # shown because the sentence it moved to supports the statement
