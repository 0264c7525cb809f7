"""The API's settings from the environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobgate.api import config
from jobgate.crds import policy

SECRET_A, SECRET_B = "a" * 32, "secret-b-0123456789abcdef0123456789"


def load(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> config.Settings:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return policy.load(config.Settings)


def test_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, {})
    assert (settings.host, settings.port, settings.default_tenant) == ("127.0.0.1", 8265, "default")
    assert settings.submit_wait is config.SubmitWait.SCHEDULED
    assert (settings.scheduling_timeout_ms, settings.job_ttl_seconds, settings.tokens) == (18000, None, {})
    assert settings.namespace_prefix == "jobgate-t-"
    assert settings.resources.custom == {"NPU": "huawei.com/Ascend910"}


def test_every_variable_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# comment\n{SECRET_A} acme\n\n  # any tenant:\n{SECRET_B}\n")
    settings = load(
        monkeypatch,
        {
            "JOBGATE_API_HOST": "0.0.0.0",
            "JOBGATE_API_PORT": "9000",
            "JOBGATE_DEFAULT_TENANT": "public",
            "JOBGATE_TENANT_NAMESPACE_PREFIX": "t-",
            "JOBGATE_DEFAULT_POOL_LABELS": "pool-cpu-a, pool-cpu-b",
            "JOBGATE_API_TOKENS_FILE": str(tokens),
            "JOBGATE_SUBMIT_WAIT": "stored",
            "JOBGATE_SCHEDULING_TIMEOUT_MS": "0",
            "JOBGATE_SUBMIT_GRACE_MS": "500",
            "JOBGATE_JOB_TTL_SECONDS": "3600",
            "JOBGATE_MAX_BODY_BYTES": "4096",
            "JOBGATE_PACKAGE_DIR": str(tmp_path / "packages"),
            "JOBGATE_MAX_PACKAGE_BYTES": "1000",
            "JOBGATE_LOG_LIMIT_BYTES": "2000",
            "JOBGATE_CUSTOM_RESOURCES": "TPU=google.com/tpu",
        },
    )
    assert (settings.host, settings.port, settings.default_tenant, settings.namespace_prefix) == (
        "0.0.0.0",
        9000,
        "public",
        "t-",
    )
    assert settings.default_pool_labels == ("pool-cpu-a", "pool-cpu-b")
    assert settings.tokens == {config.token_key(SECRET_A): "acme", config.token_key(SECRET_B): None}
    assert SECRET_A not in repr(settings)
    assert settings.submit_wait is config.SubmitWait.STORED
    assert (settings.scheduling_timeout_ms, settings.submit_grace_ms, settings.job_ttl_seconds) == (
        0,
        500,
        3600,
    )
    assert (settings.max_body_bytes, settings.max_package_bytes, settings.log_limit_bytes) == (
        4096,
        1000,
        2000,
    )
    assert settings.package_dir == tmp_path / "packages"
    assert settings.resources.custom == {"TPU": "google.com/tpu"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOBGATE_API_PORT", "70000"),
        ("JOBGATE_SUBMIT_WAIT", "later"),
        ("JOBGATE_SCHEDULING_TIMEOUT_MS", "-1"),
        ("JOBGATE_MAX_BODY_BYTES", "0"),
        ("JOBGATE_TENANT_NAMESPACE_PREFIX", "Bad_Prefix"),
        ("JOBGATE_DEFAULT_POOL_LABELS", "a b"),
        ("JOBGATE_DEFAULT_TENANT", "x" * 300),
        ("JOBGATE_API_TOKENS_FILE", "/nonexistent/tokens"),
        ("JOBGATE_CUSTOM_RESOURCES", "TPU"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(policy.SettingsError) as caught:
        load(monkeypatch, {name: value})
    assert str(caught.value).startswith(f"{name}={value!r}: ")


def test_a_tokens_file_must_hold_tokens(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(ValueError, match="no tokens"):
        config.read_tokens(empty)


def test_a_hash_inside_a_line_is_part_of_the_token(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ab#{SECRET_A} acme\n")
    assert config.read_tokens(tokens) == {config.token_key(f"ab#{SECRET_A}"): "acme"}


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (f"{SECRET_A} tenant extra", "line 2: expected `<token> [<tenant>]`"),
        # Not the unpinned token "ab" that could act for any tenant: a comment only at the start.
        ("ab#cd acme", "line 2: a token has at least 32 characters"),
        ("short-token acme", "line 2: a token has at least 32 characters"),
        (f"{SECRET_A} acme\x7f", "line 2: a tenant id is 1 to"),
    ],
)
def test_a_line_that_does_not_parse_names_itself(tmp_path: Path, line: str, error: str) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{SECRET_B}\n{line}\n")
    with pytest.raises(ValueError, match=re.escape(error)):
        config.read_tokens(tokens)


def test_the_entry_point_stops_at_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from jobgate.api import __main__ as entry

    monkeypatch.setenv("JOBGATE_SUBMIT_WAIT", "later")
    with pytest.raises(SystemExit, match="jobgate-api: JOBGATE_SUBMIT_WAIT='later': "):
        entry.main([])


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.7", "::", "api.example"])
def test_without_tokens_it_refuses_to_listen_beyond_loopback(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    from jobgate.api import __main__ as entry

    with pytest.raises(
        SystemExit, match=f"jobgate-api: no JOBGATE_API_TOKENS_FILE, and listening on {re.escape(host)}: "
    ):
        entry.main(["--host", host])


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_without_tokens_loopback_is_fine(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    assert config.unauthenticated_exposure(load(monkeypatch, {"JOBGATE_API_HOST": host})) is None


def test_tokens_or_a_deliberate_setting_allow_any_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{SECRET_A} acme\n")
    with_tokens = load(monkeypatch, {"JOBGATE_API_HOST": "0.0.0.0", "JOBGATE_API_TOKENS_FILE": str(tokens)})
    assert config.unauthenticated_exposure(with_tokens) is None
    monkeypatch.delenv("JOBGATE_API_TOKENS_FILE")
    assert load(monkeypatch, {"JOBGATE_API_ALLOW_UNAUTHENTICATED": "true"}).allow_unauthenticated
    assert config.unauthenticated_exposure(load(monkeypatch, {})) is None


def test_the_tenants_are_a_checked_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch, {"JOBGATE_TENANTS": " acme, Big Team ,"}).tenants == {"acme", "Big Team"}
    with pytest.raises(policy.SettingsError, match="JOBGATE_TENANTS"):
        load(monkeypatch, {"JOBGATE_TENANTS": "acme," + "x" * 300})


def test_a_tenant_with_file_working_dirs_gets_a_privileged_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch, {"JOBGATE_FILE_URI_ROOTS": "acme=/srv/acme"})
    assert config.pod_security_for(settings, "acme") is config.PodSecurityLevel.PRIVILEGED  # hostPath
    assert config.pod_security_for(settings, "beta") is config.PodSecurityLevel.RESTRICTED
    # A pool whose jobs run as their image's user (root, maybe): restricted would refuse them.
    as_image = load(
        monkeypatch, {"JOBGATE_POD_PROFILES": '[{"pools": ["pool-legacy"], "runAsImageUser": true}]'}
    )
    assert config.pod_security_for(as_image, "beta") is config.PodSecurityLevel.BASELINE
    with pytest.raises(policy.SettingsError, match="JOBGATE_POD_SECURITY_LEVEL"):
        load(monkeypatch, {"JOBGATE_POD_SECURITY_LEVEL": "loose"})
