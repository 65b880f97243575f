"""Compaction configuration: which summarizer, and when auto-compaction fires.

Sources, weakest first: built-in defaults, the config file's `[compaction]` section, the
`SESSIONSCOPE_*` environment variables, then the file's `[agents."<agent>".compaction]`
section. Env beats the server section because deployments put secrets and per-host endpoints
there; a per-agent section beats env because it is the most specific statement an operator
made. The format is documented in docs/compaction.md.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from sessionscope.errors import ConfigError

SummarizerKind = Literal["offline", "llm"]

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_THRESHOLD = 0.85
DEFAULT_KEEP_RECENT_TOKENS = 20_000
DEFAULT_MAX_INPUT_TOKENS = 100_000
DEFAULT_MAX_SUMMARY_TOKENS = 4_000

CONFIG_PATH_ENV = "SESSIONSCOPE_CONFIG"


class CompactionConfigError(ConfigError):
    """A config file or env var that cannot be used; the message names the place and the value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


@dataclass(frozen=True)
class SummarizerSettings:
    kind: SummarizerKind = "offline"
    base_url: str | None = None  # None: the openai package's default (api.openai.com)
    model: str | None = None
    api_key: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    # Transcript sent to the llm is cut to this many tokens, keeping the most recent.
    max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS
    # Upper bound of the offline summary; the llm is asked to stay under it too.
    max_summary_tokens: int = DEFAULT_MAX_SUMMARY_TOKENS

    def __post_init__(self) -> None:
        if self.kind not in ("offline", "llm"):
            raise CompactionConfigError(f"summarizer must be 'offline' or 'llm', not {self.kind!r}")
        if self.kind == "llm" and not self.model:
            raise CompactionConfigError(
                "summarizer 'llm' needs a model (llm.model or SESSIONSCOPE_LLM_MODEL)"
            )
        if not self.timeout_s > 0:
            raise CompactionConfigError(f"timeout_s must be > 0, not {self.timeout_s!r}")
        if self.max_input_tokens < 1000:
            raise CompactionConfigError(f"max_input_tokens must be >= 1000, not {self.max_input_tokens!r}")
        if self.max_summary_tokens < 100:
            raise CompactionConfigError(f"max_summary_tokens must be >= 100, not {self.max_summary_tokens!r}")

    @property
    def label(self) -> str:
        """What a compaction item records as its `summarizer` when this one succeeded."""
        return f"llm:{self.model}" if self.kind == "llm" else "offline"

    def __repr__(self) -> str:
        # Keep the key out of logs and tracebacks.
        key = "***" if self.api_key else None
        return (
            f"SummarizerSettings(kind={self.kind!r}, base_url={self.base_url!r}, model={self.model!r}, "
            f"api_key={key!r}, timeout_s={self.timeout_s!r})"
        )


@dataclass(frozen=True)
class AutoCompactPolicy:
    context_window: int | None = None  # None: auto-compaction off for this agent
    threshold: float = DEFAULT_THRESHOLD
    keep_recent_tokens: int = DEFAULT_KEEP_RECENT_TOKENS

    def __post_init__(self) -> None:
        if self.context_window is not None and self.context_window <= 0:
            raise CompactionConfigError(f"context_window must be > 0, not {self.context_window!r}")
        if not 0 < self.threshold <= 1:
            raise CompactionConfigError(f"threshold must be in (0, 1], not {self.threshold!r}")
        if self.keep_recent_tokens < 0:
            raise CompactionConfigError(f"keep_recent_tokens must be >= 0, not {self.keep_recent_tokens!r}")


@dataclass(frozen=True)
class CompactionSettings:
    summarizer: SummarizerSettings = field(default_factory=SummarizerSettings)
    auto: AutoCompactPolicy = field(default_factory=AutoCompactPolicy)


# Keys accepted in a `compaction` table, and where each one goes.
_POLICY_KEYS = {"context_window": int, "threshold": float, "keep_recent_tokens": int}
_LLM_KEYS = {
    "base_url": str,
    "model": str,
    "api_key": str,
    "api_key_env": str,
    "timeout_s": float,
    "max_input_tokens": int,
}
_TOP_KEYS = {"summarizer": str, "max_summary_tokens": int, "llm": dict, **_POLICY_KEYS}


def load_compaction_settings(
    path: str | None, agent: str | None, env: Mapping[str, str] | None = None
) -> CompactionSettings:
    """Settings for `agent` (None: the server default).

    `path` None means `$SESSIONSCOPE_CONFIG` if set, else no file. A path that is named but
    missing is an error, so a typo never silently means "offline with defaults".
    """
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_PATH_ENV) or None
    doc: dict[str, Any] = _read_toml(path) if path else {}
    where = path or "<defaults>"

    values: dict[str, Any] = {}
    _merge_section(values, doc.get("compaction", {}), f"{where} [compaction]")
    _merge_env(values, env)
    if agent is not None:
        agents = doc.get("agents", {})
        if not isinstance(agents, dict):
            raise CompactionConfigError(f"{where}: [agents] must be a table")
        agent_doc = agents.get(agent, {})
        if not isinstance(agent_doc, dict):
            raise CompactionConfigError(f"{where}: [agents.{agent!r}] must be a table")
        _merge_section(values, agent_doc.get("compaction", {}), f"{where} [agents.{agent!r}.compaction]")
    return _build(values, env)


def validate_config_file(path: str | None, env: Mapping[str, str] | None = None) -> list[str]:
    """Load the server's settings and those of every agent the file names, so that a bad file
    stops start-up instead of the first compaction. The error is one line: the file, the section,
    the field and the problem. Returns the agents the file names."""
    env = os.environ if env is None else env
    path = path or env.get(CONFIG_PATH_ENV) or None
    doc: dict[str, Any] = _read_toml(path) if path else {}
    agents = doc.get("agents", {})
    names = [str(name) for name in agents] if isinstance(agents, dict) else []
    for agent in [None, *names]:
        try:
            load_compaction_settings(path, agent, env)
        except CompactionConfigError as exc:
            where = path or "the environment"
            section = f" [agents.{agent!r}.compaction]" if agent is not None else ""
            message = exc.message if exc.message.startswith(where) else f"{where}{section}: {exc.message}"
            raise CompactionConfigError(message) from None
    return names


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise CompactionConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise CompactionConfigError(f"{path}: invalid TOML: {e}") from None


def _check(key: str, value: Any, kind: type, where: str) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise CompactionConfigError(f"{where}: {key} must be {kind.__name__}, not {value!r}")
    return value


def _merge_section(values: dict[str, Any], section: Any, where: str) -> None:
    if not isinstance(section, dict):
        raise CompactionConfigError(f"{where} must be a table")
    for key, value in section.items():
        if key not in _TOP_KEYS:
            raise CompactionConfigError(f"{where}: unknown key {key!r} (known: {', '.join(_TOP_KEYS)})")
        if key != "llm":
            values[key] = _check(key, value, _TOP_KEYS[key], where)
            continue
        if not isinstance(value, dict):
            raise CompactionConfigError(f"{where}: llm must be a table")
        for sub, subvalue in value.items():
            if sub not in _LLM_KEYS:
                raise CompactionConfigError(
                    f"{where}.llm: unknown key {sub!r} (known: {', '.join(_LLM_KEYS)})"
                )
            values[f"llm.{sub}"] = _check(sub, subvalue, _LLM_KEYS[sub], f"{where}.llm")
        # An explicit key in a more specific section must win over an inherited key variable.
        if "api_key" in value:
            values.pop("llm.api_key_env", None)
        if "api_key_env" in value:
            values.pop("llm.api_key", None)


def _merge_env(values: dict[str, Any], env: Mapping[str, str]) -> None:
    if kind := env.get("SESSIONSCOPE_SUMMARIZER"):
        values["summarizer"] = kind.strip().lower()
    if url := env.get("SESSIONSCOPE_LLM_BASE_URL"):
        values["llm.base_url"] = url
    if model := env.get("SESSIONSCOPE_LLM_MODEL"):
        values["llm.model"] = model
    if timeout := env.get("SESSIONSCOPE_LLM_TIMEOUT_S"):
        try:
            values["llm.timeout_s"] = float(timeout)
        except ValueError:
            raise CompactionConfigError(
                f"SESSIONSCOPE_LLM_TIMEOUT_S must be a number, not {timeout!r}"
            ) from None
    if key := env.get("SESSIONSCOPE_LLM_API_KEY"):
        values["llm.api_key"] = key
        values.pop("llm.api_key_env", None)


def _build(values: dict[str, Any], env: Mapping[str, str]) -> CompactionSettings:
    api_key = values.get("llm.api_key")
    if api_key is None and "llm.api_key_env" in values:
        api_key = env.get(values["llm.api_key_env"])
    if api_key is None:
        api_key = env.get("OPENAI_API_KEY")
    summarizer = SummarizerSettings(
        kind=values.get("summarizer", "offline"),
        base_url=values.get("llm.base_url"),
        model=values.get("llm.model"),
        api_key=api_key,
        timeout_s=values.get("llm.timeout_s", DEFAULT_TIMEOUT_S),
        max_input_tokens=values.get("llm.max_input_tokens", DEFAULT_MAX_INPUT_TOKENS),
        max_summary_tokens=values.get("max_summary_tokens", DEFAULT_MAX_SUMMARY_TOKENS),
    )
    auto = AutoCompactPolicy(**{k: values[k] for k in _POLICY_KEYS if k in values})
    return CompactionSettings(summarizer=summarizer, auto=auto)


def with_overrides(settings: SummarizerSettings, **changes: Any) -> SummarizerSettings:
    """A copy with some fields changed (validated again), e.g. a per-request timeout."""
    known = {f.name for f in fields(SummarizerSettings)}
    unknown = set(changes) - known
    if unknown:
        raise CompactionConfigError(f"unknown summarizer settings: {sorted(unknown)}")
    return replace(settings, **changes)
