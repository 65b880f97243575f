"""Compaction settings: config file sections, env overrides, per-agent overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionscope.compaction.settings import CompactionConfigError, load_compaction_settings

CONFIG = """
[compaction]
summarizer = "offline"
keep_recent_tokens = 16000
context_window = 128000
threshold = 0.8

[compaction.llm]
base_url = "http://127.0.0.1:11434/v1"
model = "llama3.1:8b"
timeout_s = 20

[agents."support-bot".compaction]
summarizer = "llm"
context_window = 32000

[agents."support-bot".compaction.llm]
model = "gpt-4o-mini"
base_url = "https://api.openai.com/v1"
api_key_env = "SUPPORT_BOT_KEY"
"""


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "sessionscope.toml"
    path.write_text(CONFIG)
    return str(path)


def test_defaults_without_file_or_env() -> None:
    s = load_compaction_settings(None, None, env={})
    assert s.summarizer.kind == "offline" and s.summarizer.timeout_s == 30.0
    assert s.auto.context_window is None and s.auto.threshold == 0.85 and s.auto.keep_recent_tokens == 20_000


def test_server_section(config: str) -> None:
    s = load_compaction_settings(config, None, env={})
    assert s.summarizer.kind == "offline"
    assert s.summarizer.model == "llama3.1:8b" and s.summarizer.timeout_s == 20.0
    assert (s.auto.context_window, s.auto.threshold, s.auto.keep_recent_tokens) == (128_000, 0.8, 16_000)


def test_agent_section_overrides_server_and_env(config: str) -> None:
    env = {"SESSIONSCOPE_LLM_MODEL": "env-model", "SUPPORT_BOT_KEY": "sk-bot", "OPENAI_API_KEY": "sk-global"}
    s = load_compaction_settings(config, "support-bot", env=env)
    assert s.summarizer.kind == "llm" and s.summarizer.model == "gpt-4o-mini"
    assert s.summarizer.base_url == "https://api.openai.com/v1"
    assert s.summarizer.api_key == "sk-bot"
    assert s.summarizer.timeout_s == 20.0  # inherited from the server section
    assert s.auto.context_window == 32_000 and s.auto.keep_recent_tokens == 16_000
    assert s.summarizer.label == "llm:gpt-4o-mini"


def test_env_overrides_server_section(config: str) -> None:
    env = {
        "SESSIONSCOPE_SUMMARIZER": "llm",
        "SESSIONSCOPE_LLM_BASE_URL": "http://vllm:8000/v1",
        "SESSIONSCOPE_LLM_MODEL": "qwen2.5",
        "SESSIONSCOPE_LLM_API_KEY": "sk-env",
        "OPENAI_API_KEY": "sk-o",
    }
    s = load_compaction_settings(config, "other-agent", env=env)
    assert (s.summarizer.kind, s.summarizer.base_url, s.summarizer.model) == (
        "llm",
        "http://vllm:8000/v1",
        "qwen2.5",
    )
    assert s.summarizer.api_key == "sk-env"


def test_openai_api_key_is_the_last_resort() -> None:
    s = load_compaction_settings(
        None,
        None,
        env={"SESSIONSCOPE_SUMMARIZER": "llm", "SESSIONSCOPE_LLM_MODEL": "m", "OPENAI_API_KEY": "sk-o"},
    )
    assert s.summarizer.api_key == "sk-o"


def test_config_path_from_env(config: str) -> None:
    s = load_compaction_settings(None, None, env={"SESSIONSCOPE_CONFIG": config})
    assert s.auto.context_window == 128_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[compaction]\nsummarizer = "gpt"\n', "must be 'offline' or 'llm'"),
        ('[compaction]\nsumarizer = "llm"\n', "unknown key 'sumarizer'"),
        ('[compaction]\nsummarizer = "llm"\n', "needs a model"),
        ('[compaction]\nthreshold = "high"\n', "threshold must be float"),
        ("[compaction.llm]\ntimeout = 5\n", "unknown key 'timeout'"),
        ("[compaction]\nthreshold = 1.2\n", "threshold must be in (0, 1]"),
        ("[compaction\n", "invalid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CompactionConfigError, match=None) as err:
        load_compaction_settings(str(path), None, env={})
    assert message in str(err.value)


def test_named_but_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CompactionConfigError, match="not found"):
        load_compaction_settings(str(tmp_path / "nope.toml"), None, env={})


def test_summary_budget_is_configurable_per_agent(tmp_path) -> None:
    from sessionscope.compaction.settings import DEFAULT_MAX_SUMMARY_TOKENS, load_compaction_settings

    path = tmp_path / "s.toml"
    path.write_text('[compaction]\nmax_summary_tokens = 3000\n\n'
                    '[agents."terse".compaction]\nmax_summary_tokens = 600\n', encoding="utf-8")
    assert load_compaction_settings(None, None, env={}).summarizer.max_summary_tokens == DEFAULT_MAX_SUMMARY_TOKENS
    assert load_compaction_settings(str(path), "other", env={}).summarizer.max_summary_tokens == 3000
    assert load_compaction_settings(str(path), "terse", env={}).summarizer.max_summary_tokens == 600
