"""The address checked is the address connected to (DNS rebinding), and failures are uniform.

Runs tests/security/netns_probe.py inside a private network namespace (`unshare -n`, needs
root or user namespaces): there one public address lives on `lo`, an internal server listens
on 127.0.0.1, and the fetcher's resolver turns from public to 127.0.0.1 after N lookups.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.security import run_in_private_netns


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run_in_private_netns("tests.security.netns_probe", timeout=180)


def test_a_rebinding_resolver_never_gets_the_server_to_loopback(report: dict[str, Any]) -> None:
    assert report["internal_requests"] == []  # the internal server never saw a single request
    for outcome in report["rebinding"] + report["redirect_rebinding"]:
        assert outcome.get("data") in (None, "public"), outcome
        if "error" in outcome:
            assert "does not resolve to a public address" in outcome["error"], outcome
    # Each way round happened: early switches are refused, late ones fetch the public image.
    outcomes = {("data" in o) for o in report["rebinding"]}
    assert outcomes == {True, False}, report["rebinding"]


def test_every_failed_fetch_reads_the_same_whatever_the_port_did(report: dict[str, Any]) -> None:
    errors = {name: outcome.get("error") for name, outcome in report["uniform"].items()}
    assert all(errors.values()), errors
    assert len(set(errors.values())) == 1, errors  # 404, 500, hang, closed, garbage: one message
    assert "HTTP" not in next(iter(errors.values()))
    private = {name: outcome.get("error") for name, outcome in report["private"].items()}
    assert all(private.values()), private
    by_host = {name: error.replace("'127.0.0.1'", "HOST") for name, error in private.items()}
    assert len(set(by_host.values())) == 1, private  # open, hanging or closed internal port: alike
    assert report["internal_requests"] == []
