"""Helpers for the web app tests: scraping /metrics and reading one sample from it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def scrape(client: TestClient, headers: dict[str, str]) -> list[Sample]:
    """Every sample that GET /metrics serves with these headers; AssertionError unless it answers 200."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The value of the one sample named `name` with these labels; AssertionError if there is none or several."""
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]
