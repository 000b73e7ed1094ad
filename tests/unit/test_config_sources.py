"""Where settings come from: config.yaml with `${NAME}` from the environment, OUTREACH_<KEY>
variables over it, arguments over both; and the checks that need all three (a provider chosen
without its credentials). Every problem is `config.yaml:LINE: message`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from outreach.config import Settings, load_settings, port_warning
from outreach.errors import ConfigError

CONFIG = """\
database: sqlite:///outreach.db
timezone: UTC
providers:
  email: outbox
  sms: outbox
sendgrid:
  api_key: ${SENDGRID_API_KEY}
  api_base: https://api.sendgrid.com
twilio:
  account_sid: ${TWILIO_ACCOUNT_SID}
  auth_token: ${TWILIO_AUTH_TOKEN}
server:
  port: 8000
  public_url: http://127.0.0.1:8000
  secret_key: ${SECRET}
"""
# lines of CONFIG, for the expected messages
EMAIL, SMS, API_KEY, SECRET_KEY = 4, 5, 7, 15
SET = {"SECRET": "Qm9v3xT7pL2sW8zR4nY6cB1dF5gH0jK9aE3uI7oP2wX"}  # the one variable outside a provider section


def load(tmp_path: Path, env: dict[str, str], overrides: dict[str, Any] | None = None,
         text: str = CONFIG) -> Settings:
    (tmp_path / "config.yaml").write_text(text)
    return load_settings(tmp_path, overrides, environ=env)


def problems(tmp_path: Path, env: dict[str, str], overrides: dict[str, Any] | None = None,
             text: str = CONFIG) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, env, overrides, text)
    return [str(p) for p in caught.value.problems]


# --- ${NAME} ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "secret"), [
    ({"SECRET": "s3cret"}, "s3cret"),
    ({"SECRET": ""}, ""),  # set but empty is a value: the variable is there, on purpose
], ids=["set", "set-but-empty"])
def test_a_set_variable_is_its_value(tmp_path: Path, env: dict[str, str], secret: str) -> None:
    settings = load(tmp_path, env)
    assert settings.server.secret_key == secret or (secret == "" and settings.server.secret_key)


@pytest.mark.parametrize(("text", "expected"), [
    (CONFIG, [f"config.yaml:{SECRET_KEY}: server.secret_key: ${{SECRET}} is not set in the environment"]),
    ("timezone: ${TZ_A}\nsender:\n  name: ${FIRST} ${LAST}\n",
     ["config.yaml:1: timezone: ${TZ_A} is not set in the environment",
      "config.yaml:3: sender.name: ${FIRST}, ${LAST} are not set in the environment"]),
    ("policy:\n  holidays:\n    - ${HOLIDAY}\n",
     ["config.yaml:3: policy.holidays[0]: ${HOLIDAY} is not set in the environment"]),
], ids=["one", "several", "in-a-list"])
def test_an_unset_variable_is_an_error_with_file_line_key_and_name(
        tmp_path: Path, text: str, expected: list[str]) -> None:
    assert problems(tmp_path, {}, text=text) == expected


@pytest.mark.parametrize(("env", "expected"), [
    ({**SET, "OUTREACH_PROVIDERS__EMAIL": "sendgrid"},
     [f"config.yaml:{API_KEY}: sendgrid.api_key: ${{SENDGRID_API_KEY}} is not set in the environment"]),
    ({**SET, "OUTREACH_PROVIDERS__SMS": "twilio", "TWILIO_AUTH_TOKEN": "t"},
     ["config.yaml:10: twilio.account_sid: ${TWILIO_ACCOUNT_SID} is not set in the environment"]),
], ids=["sendgrid", "twilio"])
def test_an_unset_variable_of_a_chosen_provider_is_an_error(
        tmp_path: Path, env: dict[str, str], expected: list[str]) -> None:
    assert problems(tmp_path, env) == expected  # and only that: not again as "providers.email without a key"


def test_an_unset_variable_of_a_provider_not_chosen_is_no_error(tmp_path: Path) -> None:
    """The example config names SendGrid's and Twilio's variables; a fresh project sends with
    `outbox` and must run without them."""
    settings = load(tmp_path, SET)
    assert (settings.sendgrid.api_key, settings.twilio.account_sid) == ("", "")


@pytest.mark.parametrize("env", [
    {"OUTREACH_SERVER__SECRET_KEY": "from-env"},
    {"outreach_server__secret_key": "from-env"},  # names are read in any case
])
def test_a_value_replaced_by_the_environment_needs_no_variable(tmp_path: Path, env: dict[str, str]) -> None:
    assert load(tmp_path, env).server.secret_key == "from-env"


# --- OUTREACH_<KEY> -----------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "get", "expected"), [
    ({"OUTREACH_DATABASE": "sqlite:////tmp/other.db"}, lambda s: s.database, "sqlite:////tmp/other.db"),
    ({"OUTREACH_SERVER__PUBLIC_URL": "https://crm.example.com"}, lambda s: s.server.public_url,
     "https://crm.example.com"),
    ({"OUTREACH_SERVER__PORT": "9000"}, lambda s: s.server.port, 9000),
    ({"OUTREACH_SMTP__STARTTLS": "true"}, lambda s: s.smtp.starttls, True),
    ({"OUTREACH_DEFAULT_REGION": "NO"}, lambda s: s.default_region, "NO"),  # text, not YAML's false
    ({"OUTREACH_POLICY__SEND_WINDOWS__EMAIL__HOURS": "07:00-09:00"},
     lambda s: s.policy.send_windows["email"].hours, "07:00-09:00"),
    ({"OUTREACH_POLICY__HOLIDAYS": '["2026-12-25"]'}, lambda s: str(s.policy.holidays[0].date), "2026-12-25"),
    ({"OUTREACH_PROVIDERS": '{"email": "smtp"}'}, lambda s: (s.providers.email, s.providers.sms),
     ("smtp", "outbox")),  # a mapping merges into the file's
    ({"OUTREACH_PROJECT": "/elsewhere", "OUTREACH_PASSWORD": "pw", "OUTREACH_TEST_PG": "x",
      "OUTREACH_SOMETHING_ELSE": "x"}, lambda s: s.database.endswith("outreach.db"), True),  # not settings
], ids=["top", "nested", "int", "bool", "text-no", "dict-key", "json-list", "json-mapping", "not-settings"])
def test_environment_overrides_a_key(tmp_path: Path, env: dict[str, str], get: Any, expected: Any) -> None:
    assert get(load(tmp_path, {**SET, **env})) == expected


@pytest.mark.parametrize(("env", "expected"), [
    ({"OUTREACH_SERVER__PORT": "eighty"},
     "config.yaml:13: server.port should be a whole number, not 'eighty' (from OUTREACH_SERVER__PORT in the "
     "environment)"),
    ({"OUTREACH_PROVIDERS__EMAIL": "mailgun"},
     f"config.yaml:{EMAIL}: providers.email: 'mailgun' is not allowed (use 'outbox', 'sendgrid', 'smtp') "
     "(from OUTREACH_PROVIDERS__EMAIL in the environment)"),
    ({"OUTREACH_DISPATCH__BATCH_SIZE": "0"},  # not in the file: the top of it
     "config.yaml:1: dispatch.batch_size must be at least 1, not '0' (from OUTREACH_DISPATCH__BATCH_SIZE in "
     "the environment)"),
    ({"OUTREACH_SERVER__PROT": "1"},
     "config.yaml:12: OUTREACH_SERVER__PROT: server.prot is not a setting (did you mean OUTREACH_SERVER__PORT?)"),
    ({"OUTREACH_SERVER_PORT": "1"},
     "config.yaml:1: OUTREACH_SERVER_PORT is not a setting (did you mean OUTREACH_SERVER__PORT?); nested keys "
     "are joined with two underscores"),
    ({"OUTREACH_PROVIDER__EMAIL": "smtp"},
     "config.yaml:1: OUTREACH_PROVIDER__EMAIL is not a setting (did you mean OUTREACH_PROVIDERS__EMAIL?)"),
    ({"OUTREACH_SERVER__PORT__X": "1"},
     "config.yaml:13: OUTREACH_SERVER__PORT__X: server.port has no settings below it"),
    ({"OUTREACH_POLICY__CAPS": "{all: 1}"},
     "config.yaml:1: OUTREACH_POLICY__CAPS: policy.caps is a mapping or list, written as JSON here "
     "(Expecting property name enclosed in double quotes at character 1)"),
], ids=["bad-int", "bad-choice", "not-in-file", "unknown-nested", "one-underscore", "unknown-top", "below-scalar",
        "bad-json"])
def test_a_bad_value_or_name_in_the_environment_names_the_variable(
        tmp_path: Path, env: dict[str, str], expected: str) -> None:
    assert problems(tmp_path, {**SET, **env}) == [expected]


# --- precedence: arguments > environment > file --------------------------------------------------

@pytest.mark.parametrize(("env", "overrides", "port"), [
    ({}, None, 8000),
    ({"OUTREACH_SERVER__PORT": "9000"}, None, 9000),
    ({"OUTREACH_SERVER__PORT": "9000"}, {"server": {"port": 9100}}, 9100),
    ({}, {"server": {"port": 9100}}, 9100),
], ids=["file", "environment-over-file", "arguments-over-environment", "arguments-over-file"])
def test_precedence(tmp_path: Path, env: dict[str, str], overrides: dict[str, Any] | None, port: int) -> None:
    assert load(tmp_path, {**SET, **env}, overrides).server.port == port


def test_an_argument_over_a_bad_environment_value_is_no_error(tmp_path: Path) -> None:
    settings = load(tmp_path, {**SET, "OUTREACH_SERVER__PORT": "eighty"}, {"server": {"port": 9100}})
    assert settings.server.port == 9100


def test_arguments_are_taken_as_given(tmp_path: Path) -> None:
    settings = load(tmp_path, SET, {"sender": {"name": "${SECRET}"}})
    assert settings.sender.name == "${SECRET}"


# --- a provider chosen without its credentials --------------------------------------------------

@pytest.mark.parametrize(("env", "expected"), [
    ({"OUTREACH_PROVIDERS__EMAIL": "sendgrid", "SENDGRID_API_KEY": ""},
     f"config.yaml:{EMAIL}: providers.email is sendgrid, but sendgrid.api_key is empty (write "
     "`api_key: ${SENDGRID_API_KEY}` under sendgrid: and set SENDGRID_API_KEY in the environment) "
     "(from OUTREACH_PROVIDERS__EMAIL in the environment)"),
    ({"OUTREACH_PROVIDERS__SMS": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": " "},
     f"config.yaml:{SMS}: providers.sms is twilio, but twilio.auth_token is empty (write "
     "`auth_token: ${TWILIO_AUTH_TOKEN}` under twilio: and set TWILIO_AUTH_TOKEN in the environment) "
     "(from OUTREACH_PROVIDERS__SMS in the environment)"),
], ids=["sendgrid-without-key", "twilio-without-token"])
def test_a_provider_without_credentials_is_an_error_at_the_choice(
        tmp_path: Path, env: dict[str, str], expected: str) -> None:
    assert problems(tmp_path, {**SET, **env}) == [expected]


def test_sendgrid_without_key_in_the_file(tmp_path: Path) -> None:
    text = "providers:\n  email: sendgrid\nsendgrid:\n  api_base: http://127.0.0.1:1\n"
    assert problems(tmp_path, {}, text=text) == [
        "config.yaml:2: providers.email is sendgrid, but sendgrid.api_key is empty (write "
        "`api_key: ${SENDGRID_API_KEY}` under sendgrid: and set SENDGRID_API_KEY in the environment)"]


@pytest.mark.parametrize("env", [
    {"OUTREACH_PROVIDERS__EMAIL": "sendgrid", "SENDGRID_API_KEY": "SG.x"},
    {"OUTREACH_PROVIDERS__EMAIL": "sendgrid", "OUTREACH_SENDGRID__API_KEY": "SG.x"},
    {"OUTREACH_PROVIDERS__SMS": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t"},
])
def test_a_provider_with_credentials_loads(tmp_path: Path, env: dict[str, str]) -> None:
    load(tmp_path, {**SET, **env})


# --- --port against server.public_url ------------------------------------------------------------

@pytest.mark.parametrize(("public_url", "port", "warns"), [
    ("http://127.0.0.1:8000", None, False),
    ("http://127.0.0.1:8000", 8000, False),
    ("http://127.0.0.1:8000", 9000, True),
    ("http://localhost", 80, False),
    ("http://localhost", 8000, True),  # the default port of the scheme
    ("https://crm.example.com:8443", 8000, True),
    ("https://crm.example.com", 8000, False),  # a proxy in front: nothing to compare
])
def test_port_warning(public_url: str, port: int | None, warns: bool) -> None:
    settings = Settings.model_validate({"server": {"public_url": public_url}})
    message = port_warning(settings, port)
    assert bool(message) == warns
    if message:
        assert f"--port {port}" in message and public_url in message


# --- database_replica ---------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "text", "expected"), [
    ({}, CONFIG, ""),  # left out: the dashboards read `database`
    ({"OUTREACH_DATABASE_REPLICA": "postgresql+psycopg://reader@replica/outreach"}, CONFIG,
     "postgresql+psycopg://reader@replica/outreach"),
    ({"REPLICA": "postgresql+psycopg://reader@replica/outreach"}, CONFIG + "database_replica: ${REPLICA}\n",
     "postgresql+psycopg://reader@replica/outreach"),
    ({}, CONFIG + "database_replica: '  '\n", ""),
], ids=["default", "environment", "variable", "blank"])
def test_database_replica(tmp_path: Path, env: dict[str, str], text: str, expected: str) -> None:
    assert load(tmp_path, {**SET, **env}, text=text).database_replica == expected


def test_a_relative_sqlite_replica_is_in_the_project(tmp_path: Path) -> None:
    got = load(tmp_path, SET, text=CONFIG + "database_replica: sqlite:///copy.db\n").database_replica
    assert got == f"sqlite:///{(tmp_path / 'copy.db').resolve()}"


def test_a_database_replica_that_is_no_url_is_an_error_at_its_line(tmp_path: Path) -> None:
    assert problems(tmp_path, SET, text=CONFIG + "database_replica: replica.internal\n") == [
        "config.yaml:16: database_replica: 'replica.internal' is not a database URL (like "
        "postgresql+psycopg://reader@replica.internal/outreach), or leave it empty to read from database"]
