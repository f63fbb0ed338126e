"""``llm=openai``: reference words from any OpenAI-compatible chat endpoint, cached on disk with provenance.

For each (dataset, aspect) the source asks one question, by default
"What are the common {concepts} of {object}? ..." (the papers' "What are the common species of fruit?"),
through the official ``openai`` client (``chat.completions``), parses the reply into a word list
(:func:`parse_word_list`) and caches the reply as JSON with the same fields as the shipped
``datasets/<name>/words/<aspect>.json`` files (``words``, ``prompt``, ``model``, ``date``, ``raw_reply``, ``note``
and more), written atomically. A cached reply is used without any network access or API key, so reruns are
offline and deterministic; a cache file can be copied into ``datasets/<name>/words/`` to ship it.

Requests are retried with exponential backoff (bounded by ``max_retries`` and ``retry_max_delay``) on 408, 409,
429, 5xx, timeouts and connection errors. A missing key, a rejected request, or a reply without a parsable list is
one clear error naming the fix. A reply is validated before it is cached (:func:`reply_problem`: a list, no refusal
phrases, at least k words, word-like items): an invalid reply is never cached, and its error names the cache file;
an invalid cached reply (from an older version) is asked again, with a warning naming the file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mcbench.atomic import write_text_atomic
from mcbench.hashing import stable_hash
from mcbench.data.base import Aspect, MultiViewDataset
from mcbench.llm_replies import object_of, parse_word_list, plural, reply_problem
from mcbench.words import WORD_SOURCES, ReferenceWords, WordSource

log = logging.getLogger(__name__)

DEFAULT_QUESTION = (
    "What are the common {concepts} of {object}? Answer with a comma-separated list of single words or short "
    "phrases only, without explanations."
)
DEFAULT_MODEL = "gpt-4o"
#: Bump when the parser changes what it returns; recorded in each cached reply.
PARSER_VERSION = 1
CACHE_FORMAT = 1
_RETRY_STATUS = {408, 409, 429}

# --------------------------------------------------------------------------------------------- the source


class OpenAIWords:
    """The ``llm=openai`` word source (a callable ``(dataset, aspect) -> ReferenceWords``)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        timeout: float = 30.0,
        max_retries: int = 4,
        retry_delay: float = 1.0,
        retry_max_delay: float = 20.0,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        question: str = DEFAULT_QUESTION,
        system: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        offline: bool = False,
        use_declared: bool = False,
    ) -> None:
        if not model:
            raise ValueError("llm.model is empty: name the chat model to ask, e.g. llm.model=gpt-4o")
        if max_retries < 0 or timeout <= 0 or retry_delay < 0 or retry_max_delay < 0:
            raise ValueError(
                f"llm: need max_retries >= 0, timeout > 0 and non-negative retry delays "
                f"(got max_retries={max_retries}, timeout={timeout}, retry_delay={retry_delay}, "
                f"retry_max_delay={retry_max_delay})"
            )
        try:
            question.format(concept="c", concepts="cs", object="o", dataset="d", aspect="a")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"llm.question={question!r} is not a valid template ({exc!r}); its fields are {{concept}}, "
                f"{{concepts}}, {{object}}, {{dataset}} and {{aspect}}"
            ) from exc
        self.model = str(model)
        self.base_url = (str(base_url).rstrip("/") if base_url else None) or None
        self.api_key_env = api_key_env or None
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.retry_delay = float(retry_delay)
        self.retry_max_delay = float(retry_max_delay)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.question = question
        self.system = system or None
        if cache_dir is None:
            from mcbench.data.synthetic import default_cache_dir

            cache_dir = default_cache_dir() / "llm"
        self.cache_dir = Path(cache_dir)
        self.offline = bool(offline)
        self.use_declared = bool(use_declared)

    # -- public ----------------------------------------------------------------------------------------------

    def __call__(self, dataset: MultiViewDataset, aspect: Aspect) -> ReferenceWords:
        if self.use_declared and aspect.reference_words:
            return ReferenceWords(tuple(aspect.reference_words), "declared", {"dataset": dataset.name})
        obj = object_of(dataset, aspect)
        concept = aspect.concept_word
        question = self.question.format(
            concept=concept, concepts=plural(concept), object=obj, dataset=dataset.name, aspect=aspect.name
        )
        key = self.cache_key(question)
        path = self.cache_path(obj, concept, key)
        cached = self._read_cache(path, key, aspect.k)
        if cached is not None:
            return self._words(cached, path, cached=True)
        if self.offline:
            raise FileNotFoundError(
                f"llm=openai with llm.offline=true: no cached reply for {dataset.name}/{aspect.name} "
                f"({question!r}, model {self.model}) in {self.cache_dir}. Run once with llm.offline=false to ask "
                f"the model, or use llm=cached for the shipped word lists."
            )
        reply, response_model, usage = self._ask(question)
        words = parse_word_list(reply)
        problem = reply_problem(reply, words, aspect.k)
        if problem:
            excerpt = (reply or "").strip().replace("\n", " ")[:200]
            raise ValueError(
                f"llm=openai: the reply of {self.model} to {question!r} cannot serve as the reference words of "
                f"{dataset.name}/{aspect.name}: {problem} (reply: {excerpt!r}). Nothing was cached (cache file: "
                f"{path}). Fix: rerun when the server answers properly; check that llm.base_url serves an "
                f"OpenAI-compatible chat API and llm.model is a chat model, or rephrase llm.question to ask for a "
                f"comma-separated list; llm=cached uses the shipped word lists."
            )
        record = {
            "words": words,
            "prompt": question,
            "system": self.system,
            "model": self.model,
            "response_model": response_model,
            "base_url": self.base_url or "https://api.openai.com/v1 (client default)",
            "temperature": self.temperature,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "raw_reply": reply,
            "note": (
                f"Reply of {self.model} through an OpenAI-compatible chat endpoint, asked by mcbench llm=openai; "
                f"words parsed by mcbench.llm_replies.parse_word_list (v{PARSER_VERSION})."
            ),
            "source": "llm",
            "dataset": dataset.name,
            "aspect": aspect.name,
            "concept": concept,
            "object": obj,
            "usage": usage,
            "parser_version": PARSER_VERSION,
            "cache_key": key,
            "cache_format": CACHE_FORMAT,
        }
        write_text_atomic(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        return self._words(record, path, cached=False)

    def cache_key(self, question: str) -> str:
        ident = {
            "format": CACHE_FORMAT,
            "model": self.model,
            "base_url": self.base_url,
            "question": question,
            "system": self.system,
            "temperature": self.temperature,
        }
        return stable_hash(ident, 20)

    def cache_path(self, obj: str, concept: str, key: str) -> Path:
        slug = "-".join(re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_") or "x" for s in (obj, concept, self.model))
        return self.cache_dir / f"{slug}-{key[:12]}.json"

    # -- internals -------------------------------------------------------------------------------------------

    def _words(self, record: dict[str, Any], path: Path, cached: bool) -> ReferenceWords:
        prov = {k: v for k, v in record.items() if k != "words"}
        prov.update(cache_file=str(path), from_cache=cached)
        return ReferenceWords(tuple(record["words"]), f"openai:{self.model}", prov)

    def _read_cache(self, path: Path, key: str, k: int) -> dict[str, Any] | None:
        """The cached record at ``path``, or None (then the model is asked again, and a valid reply replaces
        the file). A record whose reply fails :func:`reply_problem` (written by an older mcbench) is never
        used: a warning names the file; with ``llm.offline=true`` it is an error naming the file."""
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            words = record["words"]
            ok = record.get("cache_key") == key and isinstance(words, list) and words and all(
                isinstance(w, str) and w for w in words
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            log.warning("llm cache file %s is unreadable or belongs to another question; asking again", path)
            return None
        problem = reply_problem(record.get("raw_reply") or ", ".join(words), list(words), k)
        if problem:
            if self.offline:
                raise ValueError(
                    f"llm=openai: the cached reply {path} cannot serve as reference words: {problem}. Delete that "
                    f"file and rerun with llm.offline=false to ask the model again, or use llm=cached."
                )
            log.warning("llm cache file %s cannot serve as reference words (%s); asking again", path, problem)
            return None
        return record

    def _api_key(self) -> str:
        if self.api_key_env is None:
            return "unused"  # local servers without authentication (vLLM, Ollama, llama.cpp)
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise RuntimeError(
                f"llm=openai needs an API key: set the environment variable {self.api_key_env} "
                f"(export {self.api_key_env}=...; llm.api_key_env names the variable, llm.api_key_env=null for a "
                f"local server without authentication), or use llm=cached for the shipped word lists."
            )
        return key

    def _client(self):
        import openai

        return openai.OpenAI(
            api_key=self._api_key(), base_url=self.base_url, timeout=self.timeout, max_retries=0
        )

    def _delay(self, attempt: int, exc: Exception) -> float:
        delay = self.retry_delay * (2**attempt)
        response = getattr(exc, "response", None)
        if response is not None:
            retry_after = response.headers.get("retry-after")
            try:
                delay = max(delay, float(retry_after)) if retry_after else delay
            except ValueError:
                pass
        return min(delay, self.retry_max_delay)

    def _ask(self, question: str) -> tuple[str, str | None, dict[str, Any] | None]:
        import openai

        client = self._client()
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
            {"role": "user", "content": question}
        ]
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            kwargs["temperature"] = self.temperature
        if self.max_tokens:
            kwargs["max_tokens"] = int(self.max_tokens)
        where = self.base_url or "the OpenAI API"
        attempts = self.max_retries + 1
        last = ""
        for attempt in range(attempts):
            try:
                response = client.chat.completions.create(**kwargs)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise RuntimeError(
                    f"llm=openai: {where} rejected the API key from {self.api_key_env} ({exc.status_code}): set a "
                    f"valid key, or use llm=cached for the shipped word lists."
                ) from exc
            except openai.APIStatusError as exc:
                if exc.status_code in _RETRY_STATUS or exc.status_code >= 500:
                    last = f"HTTP {exc.status_code}"
                else:
                    raise RuntimeError(
                        f"llm=openai: {where} refused the request (HTTP {exc.status_code}: {_short(exc)}). Check "
                        f"llm.model={self.model} and llm.base_url; some models reject llm.temperature (set it to "
                        f"null) or llm.max_tokens."
                    ) from exc
                failure: Exception = exc
            except openai.APITimeoutError as exc:
                last, failure = f"no answer within llm.timeout={self.timeout:g}s", exc
            except openai.APIConnectionError as exc:
                last, failure = f"connection failed ({_short(exc)})", exc
            except (openai.APIResponseValidationError, json.JSONDecodeError) as exc:
                raise ValueError(
                    f"llm=openai: {where} answered something that is not a chat completion ({_short(exc)}). "
                    f"Check that llm.base_url is an OpenAI-compatible endpoint (it usually ends in /v1)."
                ) from exc
            else:
                return _reply(response, where)
            if attempt + 1 < attempts:
                delay = self._delay(attempt, failure)
                log.warning("llm=openai: %s from %s; retry %d/%d in %.1fs", last, where, attempt + 1,
                            self.max_retries, delay)
                time.sleep(delay)
        raise RuntimeError(
            f"llm=openai: no reply from {where} after {attempts} attempt(s); last: {last}. Check llm.base_url and "
            f"the network, or raise llm.max_retries / llm.timeout; a cached reply needs no network."
        )


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:200]


def _reply(response: Any, where: str) -> tuple[str, str | None, dict[str, Any] | None]:
    """The text of a chat completion; '' when it has none (the caller reports an empty list)."""
    if isinstance(response, (str, bytes)):
        text = response.decode(errors="replace") if isinstance(response, bytes) else response
        raise ValueError(
            f"llm=openai: {where} answered with a body that is not a chat completion ({text[:200]!r}). Check that "
            f"llm.base_url is an OpenAI-compatible endpoint (it usually ends in /v1)."
        )
    try:
        choices = response.choices or []
        content = choices[0].message.content if choices else None
    except (AttributeError, IndexError, TypeError):
        content = None
    usage = getattr(response, "usage", None)
    try:
        usage = usage.model_dump() if usage is not None else None
    except AttributeError:
        usage = None
    return (content if isinstance(content, str) else ""), getattr(response, "model", None), usage


@WORD_SOURCES.register("openai")
def openai_source(**params: Any) -> WordSource:
    """Reference words from an OpenAI-compatible endpoint (``conf/llm/openai.yaml``), cached on disk."""
    import inspect

    valid = set(inspect.signature(OpenAIWords.__init__).parameters) - {"self"}
    unknown = set(params) - valid
    if unknown:
        raise ValueError(
            f"llm=openai has no setting(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(valid))}"
        )
    return OpenAIWords(**params)
