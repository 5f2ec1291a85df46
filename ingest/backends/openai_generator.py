"""A model served behind the OpenAI chat API (llama.cpp's server, vLLM, LM Studio, Ollama, TGI, ...).

Teams run their models on a GPU server and share it between API replicas; this backend makes such a
server one more `Generator`. Output stays constrained: the JSON schema travels as `response_format`
(`json_schema`, the OpenAI form; `json_object` with a `schema`, the form llama-cpp-python's server
takes), and a reply that does not parse as the schema's JSON object is an error, never passed on.
Yes/no probabilities come from the first token's `top_logprobs`; a server that gives none is an error
naming the stage that needs them. Connection failures, timeouts and 5xx answers are retried with
backoff until a token has been streamed; then, or when the retries run out, they end the call with
`ModelServerError`, which the API answers with 503 and `Retry-After`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any, Callable, Iterator

from ingest.core.errors import GenerationError, ModelServerError
from ingest.core.generator import Completion, Message

#: response_format flavours; "auto" tries the OpenAI form first and remembers what the server took.
SCHEMA_FORMATS = ("auto", "json_schema", "json_object")


class OpenAIGenerator:
    """One model on an OpenAI-compatible server. Greedy (temperature 0, fixed seed) like the embedded one."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 120.0,
                 retries: int = 3, schema_format: str = "auto", name: str = "") -> None:
        if schema_format not in SCHEMA_FORMATS:
            raise ValueError(f"schema_format must be one of {SCHEMA_FORMATS}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.schema_format = schema_format
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import httpx

                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                self._client = httpx.Client(base_url=self.base_url, headers=headers,
                                            timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)))
            return self._client

    def warm_up(self) -> None:
        """Check the server answers and serves this model, so a broken setup shows at start-up."""
        response = self._send("GET", "/models", None)
        served = [m.get("id") for m in response.json().get("data", []) if isinstance(m, dict)]
        if served and self.model not in served:
            raise ModelServerError(f"the model server at {self.base_url} does not serve {self.model!r} "
                                   f"(it serves {', '.join(map(str, served[:5]))}); set models.writer / models.fast "
                                   "to a model it serves")

    def count_tokens(self, text: str) -> int:
        """An estimate (a server's tokenizer is not part of the OpenAI API): about 4 characters a token."""
        return max(1, math.ceil(len(text) / 4))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- chat ---------------------------------------------------------------------------------------
    def chat(self, messages: list[Message], *, schema: dict[str, Any] | None = None, max_tokens: int = 256,
             stop: list[str] | None = None, on_text: Callable[[str], None] | None = None) -> Completion:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                "temperature": 0.0, "seed": 0, "stream": True,
                                "stream_options": {"include_usage": True}}
        if stop:
            body["stop"] = stop[:4]  # the OpenAI API takes at most four
        formats = [self.schema_format] if self.schema_format != "auto" else ["json_schema", "json_object"]
        for i, flavour in enumerate(formats if schema is not None else ["text"]):
            if schema is not None:
                body["response_format"] = _response_format(schema, flavour)
            try:
                completion = self._stream(body, on_text)
            except _FormatRefused:
                if i + 1 < len(formats):
                    continue
                raise GenerationError(f"the model server at {self.base_url} refuses JSON-schema output in "
                                      "both forms (json_schema, json_object); use a server that constrains "
                                      "output to a schema (llama.cpp's server, vLLM)") from None
            if schema is not None:
                self.schema_format = flavour  # what this server takes; later calls go straight to it
                _check_json(completion.text, completion.finish_reason, self.base_url)
            return completion
        raise AssertionError("unreachable")

    def _stream(self, body: dict[str, Any], on_text: Callable[[str], None] | None) -> Completion:
        """One streamed call; token counts from the server's usage, estimated where it sends none."""
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        finish = ""
        for event in self._events("/chat/completions", body, lambda: bool(parts)):
            usage = event.get("usage") or usage
            timings = event.get("timings") or timings  # llama.cpp's server reports its own prefill/decode ms
            for choice in event.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    if first is None:
                        first = time.perf_counter()
                    parts.append(piece)
                    if on_text:
                        on_text(piece)
                finish = choice.get("finish_reason") or finish
        total = time.perf_counter() - started
        text = "".join(parts)
        prompt = int(usage.get("prompt_tokens") or 0) or sum(self.count_tokens(m["content"]) for m in body["messages"])
        generated = int(usage.get("completion_tokens") or 0) or self.count_tokens(text)
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or timings.get("cache_n") or 0)
        if "prompt_ms" in timings and "predicted_ms" in timings:
            prefill, decode = timings["prompt_ms"] / 1000.0, timings["predicted_ms"] / 1000.0
        else:  # wall time: until the first token, and after it
            prefill = (first or time.perf_counter()) - started
            decode = total - prefill
        return Completion(text=text, prompt_tokens=prompt, completion_tokens=generated, cached_tokens=cached,
                          prefill_s=prefill, decode_s=decode, total_s=total, finish_reason=finish)

    # -- yes/no -------------------------------------------------------------------------------------
    def yes_probability(self, messages: list[Message], yes: str = "yes", no: str = "no") -> tuple[float, Completion]:
        """P(yes) / (P(yes) + P(no)) over the first token's top log-probabilities."""
        body = {"model": self.model, "messages": messages, "max_tokens": 1, "temperature": 0.0, "seed": 0,
                "logprobs": True, "top_logprobs": 20}
        started = time.perf_counter()
        data = self._send("POST", "/chat/completions", body).json()
        total = time.perf_counter() - started
        try:
            content = data["choices"][0]["logprobs"]["content"]
            top = content[0]["top_logprobs"]
        except (KeyError, IndexError, TypeError):
            raise GenerationError(f"the model server at {self.base_url} returns no top_logprobs for {self.model!r}; "
                                  "the LLM reranker (search.rerank.stages 'llm') needs them: use a server that "
                                  "returns logprobs, or another reranker") from None
        p_yes = sum(math.exp(t["logprob"]) for t in top if t.get("token", "").strip().lower() == yes)
        p_no = sum(math.exp(t["logprob"]) for t in top if t.get("token", "").strip().lower() == no)
        usage = data.get("usage") or {}
        score = p_yes / (p_yes + p_no) if p_yes + p_no > 0 else 0.0
        return score, Completion(text="", prompt_tokens=int(usage.get("prompt_tokens") or 0), prefill_s=total,
                                 total_s=total)

    # -- transport ----------------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One request, retried with backoff on connection failures, timeouts and 5xx answers."""
        import httpx

        for attempt in range(self.retries + 1):
            try:
                response = self.client.request(method, path, json=body)
            except httpx.HTTPError as exc:
                self._backoff(attempt, f"cannot reach the model server at {self.base_url}: {_reason(exc)}")
                continue
            if response.status_code >= 500:
                self._backoff(attempt, f"the model server at {self.base_url} answered {response.status_code}: "
                                       f"{response.text[:200]}")
                continue
            _raise_for_client_error(response, self.base_url, self.model)
            return response
        raise AssertionError("unreachable")

    def _events(self, path: str, body: dict[str, Any], started: Callable[[], bool]) -> Iterator[dict[str, Any]]:
        """Server-Sent Events of a streamed call; retried like `_send` until `started()` says text went out."""
        import httpx

        for attempt in range(self.retries + 1):
            try:
                with self.client.stream("POST", path, json=body) as response:
                    if response.status_code >= 500:
                        response.read()
                        if _format_refused(response):  # some servers answer a bad request with 500
                            raise _FormatRefused(response.text[:300])
                        raise _ServerFailed(f"answered {response.status_code}: {response.text[:200]}")
                    if response.status_code >= 400:
                        response.read()
                        _raise_for_client_error(response, self.base_url, self.model)
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            return
                        yield json.loads(data)
                return
            except (httpx.HTTPError, _ServerFailed, json.JSONDecodeError) as exc:
                if isinstance(exc, httpx.TransportError):
                    message = f"cannot reach the model server at {self.base_url}: {_reason(exc)}"
                else:
                    reason = str(exc) if isinstance(exc, _ServerFailed) else _reason(exc)
                    message = f"the model server at {self.base_url} failed: {reason}"
                if started():  # text already went to the caller: repeating the call would repeat it
                    raise ModelServerError(message + " (mid-reply)", retry_after_s=5) from exc
                self._backoff(attempt, message)

    def _backoff(self, attempt: int, message: str) -> None:
        if attempt >= self.retries:
            raise ModelServerError(f"{message} (after {self.retries + 1} attempts)", retry_after_s=10)
        time.sleep(min(8.0, 0.5 * 2 ** attempt))


class _FormatRefused(Exception):
    """The server does not take this response_format: try the other form."""


class _ServerFailed(Exception):
    pass


def _response_format(schema: dict[str, Any], flavour: str) -> dict[str, Any]:
    if flavour == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True}}
    return {"type": "json_object", "schema": schema}


def _raise_for_client_error(response: Any, base_url: str, model: str) -> None:
    if response.status_code < 400:
        return
    text = response.text[:300]
    if _format_refused(response):
        raise _FormatRefused(text)
    if response.status_code in (401, 403):
        raise ModelServerError(f"the model server at {base_url} refused the key ({response.status_code}); "
                               "set models.api_key", retry_after_s=60)
    if response.status_code == 404:
        raise ModelServerError(f"the model server at {base_url} has no {model!r} or no OpenAI route there "
                               f"(404: {text})", retry_after_s=60)
    raise GenerationError(f"the model server at {base_url} refused the request ({response.status_code}): {text}")


def _format_refused(response: Any) -> bool:
    """The server named response_format as what it could not take (some answer that with 500, not 400)."""
    return response.status_code in (400, 422, 500) and "response_format" in response.text


def _check_json(text: str, finish: str, base_url: str) -> None:
    """A constrained reply must be a JSON object; one cut off by the token limit is left to the caller."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        if finish == "length":
            return  # the writer salvages what it finished, as with the embedded model
        raise GenerationError(f"the model server at {base_url} did not hold its reply to the JSON schema: "
                              f"{text[:120]!r}") from None
    if not isinstance(data, dict):
        raise GenerationError(f"the model server at {base_url} replied {type(data).__name__}, not a JSON object")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
