"""Pure parts of the channels: SMS segments and replies, error classification, signatures."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.channels.push import classify_fcm, collapse_key
from consumers.channels.twilio_sms import classify
from consumers.notifier import Outcome
from warning.signing import SignatureError, sign_headers, verify_webhook
from warning.targeting.message import short_ref_of
from warning.targeting.sms import ELLIPSIS, fit, parse_reply, segments


def test_segments_gsm7_and_ucs2_boundaries() -> None:
    assert (segments("a" * 160).encoding, segments("a" * 160).count) == ("GSM-7", 1)
    assert segments("a" * 161).count == 2 and segments("a" * 306).count == 2 and segments("a" * 307).count == 3
    assert segments("{" * 80).units == 160 and segments("{" * 81).count == 2  # extension chars: two septets
    assert (segments("预" * 70).encoding, segments("预" * 70).count) == ("UCS-2", 1)
    assert segments("预" * 71).count == 2 and segments("预" * 134).count == 2 and segments("预" * 135).count == 3
    assert segments("a" * 69 + "预").encoding == "UCS-2"  # one Chinese character makes it all UCS-2


def test_fit_keeps_the_reply_instruction_and_reference() -> None:
    text = "【红色预警】" + "南头街道" * 80 + "。回复1确认。编号ABCDEv2"
    fitted = fit(text, 2)
    assert segments(fitted).count <= 2 and segments(text).count > 2
    assert fitted.endswith("回复1确认。编号ABCDEv2") and ELLIPSIS in fitted and fitted.startswith("【红色预警】")
    short = "[RED warning] gas leak. Reply 1 to confirm. Ref ABCDEv1"
    assert fit(short, 1) == short


@given(st.text(min_size=1, max_size=800), st.integers(min_value=1, max_value=5))
def test_fit_never_exceeds_the_segment_budget(text: str, budget: int) -> None:
    assert segments(fit(text, budget)).count <= budget


@pytest.mark.parametrize(("body", "ack", "ref"), [
    ("1", True, None), ("收到", True, None), (" ACK ", True, None), ("ack", True, None), ("Ok!", True, None),
    ("收到 ABCDEv2", True, "ABCDEv2"), ("ACK #ABCDEv2", True, "ABCDEv2"), ("1，ABCDEv3。", True, "ABCDEv3"),
    ("STOP", False, None), ("where is the shelter?", False, None), ("", False, None), ("2", False, None),
])
def test_replies_that_acknowledge(body: str, ack: bool, ref: str | None) -> None:
    reply = parse_reply(body)
    assert reply.ack is ack
    if ack:
        assert reply.ref == ref


@pytest.mark.parametrize(("body", "approve", "ref"), [
    ("批准 ABCDEv2", True, "ABCDEv2"), ("APPROVE ABCDEv1", True, "ABCDEv1"), ("approve #ABCDEv1", True, "ABCDEv1"),
    ("批准", False, None), ("approve", False, None),  # an approval must name what it releases
    ("收到 ABCDEv2", False, "ABCDEv2"),
])
def test_replies_that_approve(body: str, approve: bool, ref: str | None) -> None:
    reply = parse_reply(body)
    assert (reply.approve, reply.ref, reply.ack) == (approve, ref, body.startswith("收到"))


def test_short_refs_differ_for_alerts_issued_at_the_same_second() -> None:
    a, b = short_ref_of("gas-440305001-20261125T100000Z", 1), short_ref_of("gas-440305002-20261125T100000Z", 1)
    assert a != b and a.endswith("v1") and len(a) == 7


@pytest.mark.parametrize(("status", "code", "outcome"), [
    (400, 21211, Outcome.permanent), (400, 21610, Outcome.permanent), (400, 21614, Outcome.permanent),
    (429, 20429, Outcome.retryable), (503, 20503, Outcome.retryable), (500, None, Outcome.retryable),
    (400, 30001, Outcome.retryable), (401, 20003, Outcome.retryable), (400, 21602, Outcome.permanent),
])
def test_twilio_errors_map_to_retryable_or_permanent(status: int, code: int | None, outcome: Outcome) -> None:
    assert classify(status, code, "x").outcome is outcome


def test_twilio_reasons_never_carry_a_phone_number() -> None:
    reason = classify(400, 21211, "The 'To' number +8613812345678 is not a valid phone number.").reason
    assert "+8613812345678" not in reason and "****5678" in reason and "21211" in reason


def test_fcm_errors() -> None:
    unregistered = orjson.dumps({"error": {"code": 404, "status": "NOT_FOUND", "message": "gone", "details": [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}})
    result = classify_fcm(404, unregistered)
    assert (result.outcome, result.unregistered) == (Outcome.permanent, True) and "UNREGISTERED" in result.reason
    assert classify_fcm(503, b'{"error": {"status": "UNAVAILABLE"}}').outcome is Outcome.retryable
    assert classify_fcm(429, b"not json").outcome is Outcome.retryable
    bad = classify_fcm(400, b'{"error": {"status": "INVALID_ARGUMENT"}}')
    assert (bad.outcome, bad.unregistered) == (Outcome.permanent, False)
    assert len(collapse_key("gas-440305001-20261125T100000Z")) <= 32


def test_webhook_signature_round_trip_tamper_and_replay() -> None:
    secret, body = b"s3cret", b'{"alert_id": "a", "tier": "red"}'
    headers = sign_headers(secret, body, "a.v1.grid.grid:1", now=1_000_000)
    assert verify_webhook(secret, body, headers, now=1_000_010) == "a.v1.grid.grid:1"
    with pytest.raises(SignatureError, match="does not match"):
        verify_webhook(secret, body.replace(b"red", b"blue"), headers, now=1_000_010)
    with pytest.raises(SignatureError, match="does not match"):
        verify_webhook(b"other", body, headers, now=1_000_010)
    with pytest.raises(SignatureError, match="replay"):
        verify_webhook(secret, body, headers, now=1_000_000 + 301)
    with pytest.raises(SignatureError, match="missing"):
        verify_webhook(secret, body, {}, now=time.time())
    lowercase = {k.lower(): v for k, v in headers.items()}  # HTTP headers are case-insensitive
    assert verify_webhook(secret, body, lowercase, now=1_000_000)
