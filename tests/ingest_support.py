"""Fixtures shared by the ingest and simulator tests: a fresh simulator, settings pointing at it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cxq_data.paths import DataLayout
from cxq_data.settings import ProviderSettings
from cxq_data.simulator import ProviderSimulator

__all__ = ["_fresh_yfinance", "layout", "settings", "sim"]  # fixtures: test modules star-import them

AV_KEY = "AVSECRETKEY123"
STOOQ_KEY = "STOOQSECRET456"


@pytest.fixture
def sim():
    with ProviderSimulator() as simulator:
        yield simulator


@pytest.fixture
def layout(data_dir: Path) -> DataLayout:
    return DataLayout(data_dir)


@pytest.fixture
def settings(sim: ProviderSimulator) -> ProviderSettings:
    return ProviderSettings(
        av_api_key=AV_KEY,
        stooq_api_key=STOOQ_KEY,
        yahoo_base_url=sim.base_url,
        av_base_url=sim.base_url,
        stooq_base_url=sim.base_url,
        timeout_s=0.5,
        max_retries=2,
        backoff_base_s=0.01,
        av_min_interval_s=0.0,
    )


@pytest.fixture(autouse=True)
def _fresh_yfinance():
    from cxq_data.ingest.yahoo import reset_yfinance_state

    reset_yfinance_state()
    yield
    reset_yfinance_state()


def with_(settings: ProviderSettings, **changes: object) -> ProviderSettings:
    return dataclasses.replace(settings, **changes)


def all_bytes_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
