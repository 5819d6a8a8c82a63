"""Settings from the Dapr secret store at start-up (DUEFLOW_DAPR_SECRET_STORE), read through the
Dapr SDK from a fake sidecar at the protocol level (tests/support/dapr_sidecar.py)."""

from __future__ import annotations

import os

import grpc
import pytest
import sqlalchemy as sa

from dueflow import bootstrap


def test_secrets_fill_the_settings_the_environment_leaves_unset(monkeypatch, sidecar, database_url):
    sidecar.secrets["kubernetes/dueflow-secrets"] = {
        "database-url": database_url,
        "dueflow-jwt-secret": "from-the-store",
    }
    monkeypatch.setenv("DUEFLOW_DAPR_SECRET_STORE", "kubernetes")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DUEFLOW_JWT_SECRET", "from-the-environment")
    monkeypatch.setenv("DUEFLOW_METRICS_PORT", "0")
    monkeypatch.setenv("DUEFLOW_AUTO_MIGRATE", "0")

    runtime = bootstrap.build_runtime()
    try:
        with runtime.engine.connect() as conn:  # the database the store named
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        runtime.close()

    [request] = sidecar.rpcs("GetSecret")
    assert (request.store_name, request.key) == ("kubernetes", "dueflow-secrets")
    assert os.environ["DATABASE_URL"] == database_url
    assert os.environ["DUEFLOW_JWT_SECRET"] == "from-the-environment"  # the environment wins


def test_no_secret_store_reads_nothing(monkeypatch, sidecar):
    monkeypatch.delenv("DUEFLOW_DAPR_SECRET_STORE", raising=False)
    bootstrap.load_dapr_secrets()
    assert sidecar.calls == []


def test_a_missing_secret_fails_the_start(monkeypatch, sidecar):
    monkeypatch.setenv("DUEFLOW_DAPR_SECRET_STORE", "kubernetes")
    monkeypatch.setenv("DUEFLOW_DAPR_SECRET", "nothing-here")
    with pytest.raises(grpc.RpcError):
        bootstrap.load_dapr_secrets()
