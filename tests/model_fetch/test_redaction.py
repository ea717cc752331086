"""Credentials are cut out of whole texts, wherever in them they sit."""

from __future__ import annotations

import pytest

from model_fetch.redaction import redact, redact_values

ENVIRON = {
    "MLFLOW_TRACKING_URI": "https://alice:p%40ss-w0rd@mlflow.example.com",
    "MLFLOW_TRACKING_TOKEN": "tok-0123456789",
}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:secret@mlflow.example.com/x", "https://***@mlflow.example.com/x"),
        (
            "API request to http://user:pw@127.0.0.1:5000/api/2.0/x failed",
            "API request to http://***@127.0.0.1:5000/api/2.0/x failed",
        ),
        ("postgresql+psycopg2://svc:pw@db:5432/mlflow", "postgresql+psycopg2://***@db:5432/mlflow"),
        ("s3://bucket/key?X-Amz-Signature=abc123&a=1", "s3://bucket/key?X-Amz-Signature=***&a=1"),
        ("login with password=hunter22, then", "login with password=***, then"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("user@example.com wrote", "user@example.com wrote"),
    ],
)
def test_credentials_in_a_text_are_masked(text: str, shown: str) -> None:
    assert redact(text, {}) == shown


def test_secret_values_from_the_environment_are_masked_anywhere() -> None:
    """The URI's password, raw and decoded, and token variables, even outside a URL."""
    text = "auth failed for p%40ss-w0rd / p@ss-w0rd with token tok-0123456789"
    assert redact(text, ENVIRON) == "auth failed for *** / *** with token ***"


def test_json_like_values_are_redacted_throughout() -> None:
    value = {"error": "at https://u:pw@h/", "nested": [{"uri": "http://a:b@c"}], "code": 4}
    assert redact_values(value, {}) == {
        "error": "at https://***@h/",
        "nested": [{"uri": "http://***@c"}],
        "code": 4,
    }


def test_short_values_are_left_to_the_patterns() -> None:
    """A 3-character password would mask ordinary words; the URL pattern still catches it."""
    environ = {"MLFLOW_TRACKING_URI": "http://u:abc@h"}
    assert redact("abcdef at http://u:abc@h", environ) == "abcdef at http://***@h"
