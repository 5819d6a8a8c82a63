"""`bootstrap.check_config(function)`: a function refuses to start when a setting it will use
cannot work (not at the first request or the first e-mail), with an error naming the variable;
settings of other functions do not stop it."""

from __future__ import annotations

import logging
import os

import pytest

from dueflow import bootstrap, config
from dueflow.config import ConfigError

FUNCTIONS = ("tasks", "recurrence", "reminders", "notify", "commands", "deadletter", "live")
PREFIXES = ("DUEFLOW_", "SMTP_", "SENDGRID_", "DAPR_", "K_SINK", "DATABASE_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """A deployment with nothing set but a JWT secret."""
    for name in list(os.environ):
        if name.startswith(PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DUEFLOW_JWT_SECRET", "s" * 32)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_defaults_start_every_function(function):
    bootstrap.check_config(function)


def test_an_unknown_function_is_a_programming_error():
    with pytest.raises(ValueError, match="pigeon"):
        bootstrap.check_config("pigeon")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DUEFLOW_EMAIL_BACKEND": "smtp"}, "SMTP_URL"),
        ({"DUEFLOW_EMAIL_BACKEND": "sendgrid"}, "SENDGRID_API_KEY"),
        ({"DUEFLOW_EMAIL_BACKEND": "pigeon"}, "DUEFLOW_EMAIL_BACKEND .*pigeon"),
        ({"DUEFLOW_EMAIL_TIMEOUT": "soon"}, "DUEFLOW_EMAIL_TIMEOUT"),
        ({"DUEFLOW_EMAIL_BACKEND": "dapr", "DAPR_HTTP_PORT": "35OO"}, "DAPR_HTTP_PORT"),
        ({"DUEFLOW_EMAIL_BACKEND": "dapr", "DAPR_GRPC_PORT": "5OOO1"}, "DAPR_GRPC_PORT"),
        ({"DUEFLOW_REMINDER_LATE_AFTER": "2m"}, "DUEFLOW_REMINDER_LATE_AFTER"),
    ],
)
def test_notify_refuses_e_mail_settings_that_cannot_send(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        bootstrap.check_config("notify")
    # a function that sends no e-mail starts anyway
    bootstrap.check_config("commands")


def test_the_e_mail_settings_that_work_are_accepted(monkeypatch):
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", "smtp")
    monkeypatch.setenv("SMTP_URL", "smtp://mail.example.com:587?starttls=true")
    bootstrap.check_config("notify")
    assert config.email().smtp_url == "smtp://mail.example.com:587?starttls=true"
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", "SendGrid")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.key")
    bootstrap.check_config("notify")
    assert config.email().backend == "sendgrid"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DUEFLOW_REMINDER_BATCH", "1e3", "DUEFLOW_REMINDER_BATCH must be a whole number"),
        ("DUEFLOW_REMINDER_BATCH", "0", "DUEFLOW_REMINDER_BATCH must be at least 1"),
        ("DUEFLOW_REMINDER_EVENT_BATCH", "2.5", "DUEFLOW_REMINDER_EVENT_BATCH must be a whole"),
        ("DUEFLOW_REMINDER_EVENT_BATCH", "ten", "DUEFLOW_REMINDER_EVENT_BATCH must be a whole"),
    ],
)
def test_reminders_refuses_a_batch_size_that_is_not_a_whole_number(
    monkeypatch, name, value, message
):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        bootstrap.check_config("reminders")
    bootstrap.check_config("recurrence")  # not its setting


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DUEFLOW_OUTBOX_BATCH", "100.0"),
        ("DUEFLOW_OUTBOX_CONCURRENCY", "0"),
        ("DUEFLOW_OUTBOX_POLL", "fast"),
        ("DUEFLOW_OUTBOX_MAX_BACKOFF", "1m"),
        ("DUEFLOW_SINK_TIMEOUT", "5s"),
        ("DUEFLOW_METRICS_PORT", "9464.5"),
        ("DUEFLOW_METRICS_PORT", "70000"),
    ],
)
def test_every_function_refuses_bad_relay_and_metrics_settings(monkeypatch, function, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        bootstrap.check_config(function)


def test_tasks_needs_a_jwt_key_outside_local_development(monkeypatch):
    monkeypatch.delenv("DUEFLOW_JWT_SECRET")
    with pytest.raises(ConfigError, match="DUEFLOW_JWT_SECRET or DUEFLOW_JWKS_URL"):
        bootstrap.check_config("tasks")
    for function in FUNCTIONS[1:]:  # events carry no user tokens
        if function != "live":  # live checks the API's tokens (below)
            bootstrap.check_config(function)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DUEFLOW_REMINDER_JOBS", "cron"),
        ("DAPR_GRPC_PORT", "50OO1"),
        ("DUEFLOW_DAPR_TIMEOUT", "5s"),
    ],
)
def test_reminders_with_dapr_jobs_refuses_bad_sidecar_settings(monkeypatch, name, value):
    monkeypatch.setenv("DUEFLOW_REMINDER_JOBS", "dapr")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        bootstrap.check_config("reminders")


def test_integers_are_parsed_as_integers(monkeypatch):
    monkeypatch.setenv("DUEFLOW_OUTBOX_BATCH", " 250 ")
    monkeypatch.setenv("DUEFLOW_REMINDER_EVENT_BATCH", "5000")
    assert config.outbox_batch_size() == 250
    assert config.reminder_event_batch() == 1000  # at most 1000, as documented


@pytest.mark.parametrize(
    "name", ["DUEFLOW_LIVE_RETENTION", "DUEFLOW_LIVE_HEARTBEAT", "DUEFLOW_LIVE_MAX_STREAM"]
)
def test_live_refuses_settings_that_are_not_numbers(monkeypatch, name):
    monkeypatch.setenv(name, "a day")
    with pytest.raises(ConfigError, match=name):
        bootstrap.check_config("live")
    bootstrap.check_config("tasks")  # a function that does not stream starts anyway


def test_live_needs_a_way_to_check_tokens(monkeypatch):
    monkeypatch.delenv("DUEFLOW_JWT_SECRET")
    with pytest.raises(ConfigError, match="DUEFLOW_JWT_SECRET"):
        bootstrap.check_config("live")


@pytest.mark.parametrize(
    "value", ["dueflow.example", "ftp://dueflow.example", "https://", "https://x.example/?a=1"]
)
def test_tasks_refuses_a_public_url_that_is_no_http_origin(monkeypatch, value):
    monkeypatch.setenv("DUEFLOW_PUBLIC_URL", value)
    with pytest.raises(ConfigError, match="DUEFLOW_PUBLIC_URL"):
        bootstrap.check_config("tasks")
    bootstrap.check_config("recurrence")  # another function does not read it


def test_the_public_url_loses_its_trailing_slash(monkeypatch):
    assert config.public_url() is None
    monkeypatch.setenv("DUEFLOW_PUBLIC_URL", "https://dueflow.example/api/")
    assert config.public_url() == "https://dueflow.example/api"


@pytest.fixture
def deprecations(monkeypatch):
    """The deprecation warnings of dueflow.config, logged from now on (each once per process)."""
    monkeypatch.setattr(config, "_deprecations_logged", set())
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("dueflow.config")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_the_old_backend_name_outbox_is_the_eml_backend_with_one_warning(monkeypatch, deprecations):
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", "Outbox")
    bootstrap.check_config("notify")
    bootstrap.check_config("notify")
    assert config.email().backend == "eml"
    assert [(r.levelname, r.getMessage()) for r in deprecations] == [
        ("WARNING", "DUEFLOW_EMAIL_BACKEND=outbox is deprecated: use DUEFLOW_EMAIL_BACKEND=eml "
         "(same meaning)"),
    ]  # fmt: skip


def test_the_old_directory_variable_still_names_the_eml_directory_with_one_warning(
    monkeypatch, deprecations
):
    monkeypatch.setenv("DUEFLOW_OUTBOX_DIR", "/tmp/old-name")
    bootstrap.check_config("notify")
    assert config.email().eml_dir == "/tmp/old-name"
    assert [(r.levelname, r.getMessage()) for r in deprecations] == [
        ("WARNING", "DUEFLOW_OUTBOX_DIR is deprecated: use DUEFLOW_EML_DIR (same meaning)"),
    ]
    monkeypatch.setenv("DUEFLOW_EML_DIR", "/tmp/new-name")  # the new name wins
    assert config.eml_dir() == "/tmp/new-name"
    assert len(deprecations) == 1


def test_the_new_names_log_no_deprecation(monkeypatch, deprecations):
    monkeypatch.setenv("DUEFLOW_EMAIL_BACKEND", "eml")
    monkeypatch.setenv("DUEFLOW_EML_DIR", "/tmp/mail")
    bootstrap.check_config("notify")
    assert (config.email().backend, config.email().eml_dir) == ("eml", "/tmp/mail")
    assert config.email_backend() == "eml"
    assert deprecations == []
    monkeypatch.delenv("DUEFLOW_EML_DIR")
    assert config.eml_dir() == ".dueflow/eml"  # the default
