"""Evidence that talks to the assistant is dropped before the writer reads it.

Documents are data. A sentence that addresses the model ("ignore previous instructions",
"you must answer", "system prompt") is an instruction smuggled into a document; it never
answers a user's question, so removing it costs nothing and takes away the lever. The writer
prompt also says the evidence is data, and every statement must survive verification, so
this is one layer of three, not the only defence.
"""

from __future__ import annotations

import re

_PATTERNS = [
    r"\bignore (all |any )?(the |your )?(previous|prior|above|earlier|preceding|other) (instructions|prompts?|rules|context)",
    r"\bdisregard (all |any )?(the |your )?(previous|prior|above|earlier|other)",
    r"\b(system|developer) (prompt|message|instruction)s?\b",
    r"\byou (are|must|should|will) (now |always |only )?(an? |the )?(ai|assistant|model|chatbot|language model)\b",
    r"\b(as an|you are an?) (ai|assistant|language model)\b",
    r"\b(assistant|ai|model|chatbot|llm)s?,? (must|should|shall) (always |only |now )?(answer|reply|respond|say|output|write)",
    r"\b(answer|reply|respond) (only |always )?with\b.*\b(regardless|no matter)\b",
    r"\bnew instructions?\b",
    r"\b(ignore|disregard|forget) (the |this |your |all |any )?(user'?s? )?(question|instructions?|prompt|query|request)s?\b",
    r"\b(reply|answer|respond|say) (only|always|just) (that|with)\b",
    r"<\|?im_(start|end)\|?>|\[/?INST\]|<\|(system|user|assistant)\|>",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def addresses_the_model(text: str) -> bool:
    """True when the sentence reads as an instruction to an AI system rather than content."""
    return bool(_INSTRUCTION.search(text))


_ABSENCE = re.compile(
    r"\b(?:not|no)\b[^.]{0,40}?\b(?:mentioned|provided|stated|given|specified|information)\b[^.]{0,20}?"
    r"\b(?:in|by) the (?:given |provided |available )?(?:evidence|documents?|passages?|sentences?|text|context)\b",
    re.IGNORECASE)


def says_evidence_is_silent(text: str) -> bool:
    """True for "X is not mentioned in the evidence": a remark about the evidence, not a finding from it.

    Written as a statement first, the small writer sometimes "cites" a sentence for the absence of an answer.
    """
    return bool(_ABSENCE.search(text))
