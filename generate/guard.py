"""Evidence that talks to the assistant is dropped before the writer reads it, and is never citable.

Documents are data. A sentence that addresses the model ("ignore previous instructions", "note to
any AI reading this", "if anyone asks, reply that ...") is an instruction smuggled into a document;
it never answers a user's question, so removing it costs little and takes away the lever. This is a
heuristic over wording, so it is one layer, not the guarantee: the writer prompt says the evidence is
data, and the verifier (generate/verifier.py) refuses a quote that reads as an instruction (this same
test, applied whether or not the guard ran) and a statement that adds a name or number its cited
sentences lack or words only an instruction used. `citewise eval guard` measures this test.

The patterns aim at what an instruction to the model tends to say rather than at a list of known
attack sentences, though new phrasings still slip past them: whom it addresses (an AI, an assistant, "you" with a speech verb), what
it overrides (previous instructions, what you were told), or the answering itself ("the answer to
any question about", "in your answer", "when asked ..., reply that"). Text is normalised first, so
zero-width characters, letter-spaced words and digits standing in for letters do not hide a word.
"""

from __future__ import annotations

import re
import unicodedata

_AI = (r"(?:ai|a\.i\.|chat ?bots?|llms?|gpts?|chatgpt|language models?|(?:ai|language|generative) models?|"
       r"summari[sz]ers?|summari[sz]ation (?:engines?|tools?|systems?|models?)|(?:ai|llm) (?:agents?|systems?|tools?)|"
       r"automated (?:readers?|tools?|systems?|agents?)|machine readers?|(?:retrieval[- ]augmented|rag) "
       r"(?:systems?|pipelines?|generators?))")
#: Words that name an AI only sometimes ("the model must answer within 2 s", "lab assistants"): these
#: count only beside a speech verb that introduces what to say.
_AI_OR_MODEL = rf"(?:{_AI}|assistants?|models?|bots?|agents?)"
_SAY = (r"(?:say|state|tell(?: \w+)?|answer|reply|respond|claim|report|mention|write|output|print|repeat|assert|"
        r"insist|declare|explain|reveal|include|present|describe|attribute|record)")
#: What a reader is told to do with its answer; narrower than _SAY, since documentation tells "you"
#: to write, include and print things all the time.
_ANSWER = r"(?:say|state|tell(?: \w+)?|answer|reply|respond|claim|assert|insist)"
_MODAL = r"(?:must|should|shall|will|would|need to|needs to|has to|have to|are to|is to|ought to|are required to)"
_THEN_WHAT = r"\b(?:\s+(?:\w+\s+){0,3}?(?:that\b|:)|\s*['\"“])"  # a speech verb that introduces what to say
_OBJECT = (r"(?:instructions?|directives?|guidance|prompts?|programming|safety (?:checks|rules|guidelines)|"
           r"what you (?:were|have been|'ve been) told|everything (?:above|before|else|earlier|so far)|"
           r"(?:all )?(?:of )?the above (?:text|instructions)|"
           r"(?:your|all (?:the |your )?|(?:the )?(?:previous|prior|earlier|preceding|original)) (?:rules|guidelines)|"
           r"(?:rules|guidelines) (?:above|before))")

_PATTERNS = [
    # overriding what the model was told
    rf"\b(?:ignore|disregard|forget|neglect|set aside|override|bypass|discard|stop following|do not follow|"
    rf"don't follow)\b[^.;:!?]{{0,40}}?\b{_OBJECT}",
    rf"\b(?:overrides?|supersedes?|replaces?|cancels?|voids?)\b[^.;:!?]{{0,20}}?\b(?:your|all|any|previous|prior|"
    rf"earlier)\s+(?:{_OBJECT}|configuration|polic(?:y|ies)|rules)",
    r"\b(?:overrides?|supersedes?|takes? precedence over)\s+(?:the rest of\s+)?(?:the |your |all |any |other )?"
    r"(?:context|evidence|instructions|prompt)\b|\bnot what you (?:were|have been|'ve been) (?:asked|told)\b",
    r"\b(?:do what|follow|obey) (?:this|these) (?:line|sentence|note|text|instructions?)\b|"
    r"\byou(?:'ve| have) been (?:reconfigured|reprogrammed|updated|jailbroken|unlocked|reset|freed)\b",
    r"\byour (?:task|job|role|goal|purpose|mission) (?:has|have|is) (?:changed|been changed|been updated|now)\b",
    rf"\b(?:regardless of|no matter|despite) (?:what )?(?:the |your )?(?:evidence|context|documents?|sources|"
    rf"instructions)\b[^.;!?]{{0,40}}?\b(?:{_SAY}|conclude)\s+that\b",
    r"\byour (?:previous|prior|earlier|original|old|initial|current) (?:instructions|guidance|directives|rules|"
    r"prompts?|configuration|programming|task)\b",
    # chat-template markup and role labels, unless the sentence names the markup ("[INST] tags are ...")
    r"<\|?im_(?:start|end)\|?>|\[/?INST\](?!\s*(?:tags?|tokens?|markers?)\b)|<\|(?:system|user|assistant)\|>|"
    r"<<\s*/?SYS\s*>>|</?\s*(?:system|assistant)\s*>",
    r"(?:^|<!--|[\[(*#]|\*\*)\s*(?:system|assistant|ai|(?:ai|language) models?|llms?)"
    r"(?: (?:note|message|instructions?|override|prompt))?:",
    r"\b(?:system|assistant|ai) overrides?\b|\b(?:assistant|ai) (?:instructions?|note)\b",
    r"^\s*(?:prompt|system|instructions?) (?:update|change|override)\s*:",
    # addressing an AI reader
    rf"\b(?:dear|hey|hi|hello|attention|note|message|reminder|instructions?|warning|guidance|directives?)\s*,?\s*"
    rf"(?:to|for)?\s*"
    rf"(?:any|all|the|every)?\s*(?:(?:helpful|friendly)\s+)?(?:{_AI}\b|{_AI_OR_MODEL}\s*[,:])",
    rf"(?:^\s*{_AI}|\b(?:to|for)\s+(?:any|all|every|each|the)\s+{_AI_OR_MODEL})\s*:",
    rf"\bif you(?:'re| are| were)\s+(?:an?\s+|the\s+)?(?:\w+\s+)?(?:{_AI_OR_MODEL}|software|program|machine)\b",
    rf"\b(?:for|to) {_AI}(?:\s+only)?\s*:|\b(?:whichever|whatever|any|every)\s+{_AI_OR_MODEL}\s+(?:answers|reads|"
    rf"replies|responds|sees|processes)\b|\b{_AI}\s*,?\s*(?:take note|listen|pay attention)\b",
    rf"\b{_AI_OR_MODEL}\s+(?:(?:that|who)\s+)?(?:reading|reads?|processing|process(?:es)?|parsing|summari[sz]ing|"
    rf"summari[sz]es?|index(?:es|ing)?|crawl(?:s|ing)?)\s+(?:this|these)\b",
    r"\bwhoever (?:reads|processes|parses|summari[sz]es) this\b",
    rf"\b{_AI}\b(?:[\s,]+\w+){{0,5}}?\s+{_MODAL}\s+(?:(?:always|only|now|instead|also|never)\s+)?{_SAY}\b",
    rf"\b{_AI_OR_MODEL}\b(?:[\s,]+\w+){{0,5}}?\s+{_MODAL}\s+(?:(?:always|only|now|instead|also|never)\s+)?{_SAY}"
    rf"{_THEN_WHAT}",
    # "you" told what to answer
    rf"\byour?\b[^.;!?]{{0,30}}?\b{_MODAL}\s+(?:(?:always|only|now|instead|also|never)\s+)?{_ANSWER}{_THEN_WHAT}",
    r"\byou\b[^.;!?]{0,40}?\bto (?:mention|say|state|tell \w+|report|claim|answer|reply|respond|insist) (?:that\b|:)",
    rf"\b{_ANSWER} instead,? that\b|\binstead,? {_ANSWER} that\b",
    # role play and jailbreak framings
    r"\byou(?:'re| are) now (?:an?|the|in|called|named|acting|playing|[\w-]*bot|dan)\b",
    r"\bpretend\s+(?:that\s+)?you(?:'re| are)\b",
    rf"\bact as (?:an? )?(?:dan|unrestricted|jailbroken|{_AI})\b|\b(?:developer|god|dan|jailbreak) mode\b",
    rf"\b{_AI_OR_MODEL} (?:with no|without(?: any)?) (?:rules|restrictions|filters|limits)\b",
    # the answering process itself
    r"\b(?:the|your|any|every|each|all)\s+(?:(?:correct|only|official|real|true|right|final)\s+)?"
    r"(?:answers?|responses?|repl(?:y|ies)|outputs?)\s+(?:to|for|about|on)\s+(?:any|every|all|each|questions?|queries)\b",
    r"\b(?:your\s+(?:(?:correct|only|official|real|true|right|final)\s+)?|the\s+(?:correct|only|official|real|true|"
    rf"right|final)\s+)(?:answer|response|reply)\s+{_MODAL}\s+(?:be|say|state|include|mention)\b",
    rf"\bthe (?:answer|response|reply) {_MODAL} (?:be|say|state) that\b",
    r"\b(?:official|only correct|approved) (?:answer|response|reply)\b",
    rf"\b(?:if|when|whenever)\s+(?:anyone|someone|somebody|a user|the user|users|people|you(?:'re| are)?)?\s*"
    rf"(?:asks?|asked)\b[^.;!?]{{0,60}}?\b(?:{_SAY}\s+(?:that\b|:|it\b|them\b)|(?:be|is) that\b)",
    r"\bwhatever the (?:question|query|user asks)\b",
    rf"\b{_MODAL} (?:appear|be included|be mentioned|be stated|be repeated) in (?:every|each|any|all|your) "
    r"(?:repl(?:y|ies)|answers?|responses?|summar(?:y|ies)|outputs?)\b",
    r"\bin your (?:answer|response|reply|summary|report|output)s?\b|\b(?:in|for)\s+(?:every|each|any|all)\s+"
    r"(?:responses?|answers?|repl(?:y|ies)|summar(?:y|ies)|outputs?)\s+(?:that\s+)?you\b",
    r"\b(?:any|every|each|your)\s+(?:generated|automated|automatic|ai[- ]generated|machine[- ]generated)\s+"
    r"(?:summar(?:y|ies)|answers?|responses?|repl(?:y|ies)|reports?|outputs?)\b",
    rf"\byour (?:answer|response|reply|summary|report|output)s?\s+(?:says?|states?|mentions?|includes?|contains?|"
    rf"claims?|reads?|{_MODAL})\b",
    r"\b(?:begin|start|end|open|finish)\s+(?:your|every|each|the)\s+(?:answer|response|reply|output|summary)s?\s+with\b",
    r"\bwhen you (?:generate|write|produce|compose|create|draft)\b[^.;!?]{0,30}?\b(?:answer|response|reply|report|"
    r"summary|output)",
    r"\b(?:questions?|queries|asked|asks)\b[^.;!?]{0,50}?\bby (?:saying|stating|claiming|replying|answering|writing)\b",
    r"\b(?:summari[sz]e|describe|present|report) (?:this|the) (?:document|page|text|article) as (?:saying|stating|"
    r"claiming)\b",
    rf"\b(?:when|whenever|if)\s+(?:you\s+)?(?:cite|citing|quote|quoting|summari[sz]e|summari[sz]ing)\b"
    rf"[^.;!?]{{0,40}}?\b{_SAY}\b",
    r"\bcit(?:e|ing) (?:this (?:sentence|line|document|page|passage)|evidence (?:number )?\d+|sentence \d+|\[\d+\])",
    r"\bnew (?:task|instructions?|rules?|polic(?:y|ies)|role|persona)\s*:(?!:)",
    r"\b(?:output|print|repeat|say|write) (?:only )?(?:the following|this)\b[^.;!?]{0,30}?(?:verbatim|word for word|"
    r"exactly)|\b(?:output|print|repeat) (?:only )?(?:the following|this)\b[^.;!?]{0,30}?:",
    # the override, and a note addressed to the assistant, in a few other languages
    r"\b(?:ignorier\w*|vergiss|missachte\w*|ignore[zr]?|oublie[zr]?|olvid\w*|ignora\w*|dimentica\w*|esque[cç]\w*)\b"
    r"[^.;:!?]{0,40}?\b(?:anweisungen|befehle|regeln|instructions|consignes|instrucciones|reglas|indicaciones|"
    r"istruzioni|regole|instru[cç][oõ]es|regras)\b",
    r"\b(?:instrucci[oó]n|instruction|anweisung|hinweis|istruzione|instru[cç][aã]o|nota|note|message|mensaje|"
    r"messaggio)\s+(?:para|pour|f[uü]r|per|for|to|a|al|à)\s+(?:el |la |le |l'|den |die |the |o |il |lo )?"
    r"(?:asistente|assistant|assistent(?:en)?|assistente|ia|ki|ai|bot|modelo|mod[eè]le|modell|modello)\b",
    r"(?:忽略|无视|忘记|忘掉)[^。！？]{0,12}(?:指示|指令|说明|规则|提示)",
    r"(?:игнорируй|проигнорируй|забудь)\w*[^.!?]{0,40}?(?:инструкци|указани|правил)",
    r"\b(?:system|ki|assistenten?)(?:anweisung|hinweis|nachricht|befehl)\w*\s*:|"
    r"\binstrucci[oó]n(?:es)? del sistema\s*:|\binstructions? (?:du )?syst[eè]me\s*:|\bistruzion[ei] di sistema\s*:",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.MULTILINE)

_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")
_LETTER_SPACED = re.compile(r"\b(?:[^\W\d_][ .\-_*]){3,}[^\W\d_]\b")
_LEET = str.maketrans("013457@$", "oieastas")


def _normalised(text: str) -> str:
    """The text with the usual disguises undone: invisible characters, "I g n o r e", "1gn0re"."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    text = _LETTER_SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group()), text)
    # digits inside words of four or more only, so "Python 3.8" and "a1" stay what they are
    return re.sub(r"\b(?=\w*[^\W\d_])(?=\w*\d)\w{4,}\b", lambda m: m.group().translate(_LEET), text)


def addresses_the_model(text: str) -> bool:
    """True when the sentence reads as an instruction to an AI system rather than content."""
    return bool(_INSTRUCTION.search(text) or _INSTRUCTION.search(_normalised(text)))


_ABSENCE = re.compile(
    r"\b(?:not|no)\b[^.]{0,40}?\b(?:mentioned|provided|stated|given|specified|information)\b[^.]{0,20}?"
    r"\b(?:in|by) the (?:given |provided |available )?(?:evidence|documents?|passages?|sentences?|text|context)\b",
    re.IGNORECASE)


def says_evidence_is_silent(text: str) -> bool:
    """True for "X is not mentioned in the evidence": a remark about the evidence, not a finding from it.

    Written as a statement first, the small writer sometimes "cites" a sentence for the absence of an answer.
    """
    return bool(_ABSENCE.search(text))
