"""The pure parts of the SMPP and cell broadcast channels: routing by 号段, encodings and
flash SMS, validity, receipts, refusals; CBS message identifiers, serial numbers, bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from warning.delivery.cell_broadcast import (
    BroadcastConfig,
    broadcast_targets,
    broadcasts_until,
    cbc_message,
    load_broadcast_config,
    message_code,
)
from warning.delivery.smpp import (
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
    Gateway,
    ReceiptError,
    SmppConfig,
    SmppConfigError,
    encode_text,
    load_smpp_config,
    parse_receipt,
    submit_outcome,
    validity_period,
)
from warning.models import Tier


def test_numbers_go_to_their_carriers_gateway_by_the_longest_prefix() -> None:
    config = load_smpp_config()
    assert [config.route(n) for n in ("+8613800000001", "+8613000000002", "+8618900000003", "+8610000000101")] == [
        "cmcc", "cucc", "ctcc", "cmcc"]  # a landline: the default gateway
    config = SmppConfig.model_validate({**config.model_dump(), "gateways": [
        *config.model_dump()["gateways"], {"name": "pilot", "system_id": "pilot", "prefixes": ["+861380000"]}]})
    assert config.route("+8613800000001") == "pilot" and config.route("+8613812345678") == "cmcc"


def test_a_bad_gateways_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "gw.yaml"
    bad.write_text("default: nowhere\ngateways:\n  - {name: cmcc, system_id: warning-cmcc}\n")
    with pytest.raises(SmppConfigError, match=r"gw.yaml: .*default 'nowhere' is none of the gateways \['cmcc'\]"):
        load_smpp_config(bad)
    bad.write_text("default: cmcc\ngateways:\n  - {name: cmcc, system_id: a-system-id-far-too-long}\n")
    with pytest.raises(SmppConfigError, match=r"gateways.0.system_id: String should have at most 15"):
        load_smpp_config(bad)
    with pytest.raises(SmppConfigError, match="env WARNING_NO_SUCH_PASSWORD is not set"):
        Gateway(name="x", system_id="x", password_env="WARNING_NO_SUCH_PASSWORD").password(sandbox=False)
    with pytest.raises(SmppConfigError, match="live SMPP needs password_env or password_file"):
        Gateway(name="x", system_id="x").password(sandbox=False)
    long = tmp_path / "pw"
    long.write_text("longer-than-eight")
    with pytest.raises(SmppConfigError, match=r"longer than SMPP 3\.4.s 8 octets"):
        Gateway(name="x", system_id="x", password_file=long).password(sandbox=False)


def test_chinese_is_ucs2_red_is_flash_and_long_texts_travel_in_message_payload() -> None:
    red = encode_text("【红色预警】燃气泄漏", flash=True)
    assert (red.data_coding, red.short_message.decode("utf-16-be"), red.payload) == (0x18, "【红色预警】燃气泄漏", None)
    plain = encode_text("[RED warning] gas leak", flash=False)
    assert (plain.data_coding, plain.short_message) == (0x00, b"[RED warning] gas leak")
    long = encode_text("预警" * 71, flash=False)  # 142 UTF-16 units: more than one SMS
    assert (long.data_coding, long.short_message, long.payload) == (0x08, b"", ("预警" * 71).encode("utf-16-be"))


def test_validity_ends_with_the_alert() -> None:
    assert validity_period(3725) == "000000010205000R"  # 1 h 2 min 5 s, relative
    assert validity_period(10) == "000000000100000R"  # at least a minute
    assert validity_period(30 * 86400) == "000007000000000R"  # at most a week


def test_receipts_from_text_or_tlvs_and_malformed_ones() -> None:
    text = b"id:0000000042 sub:001 dlvrd:001 submit date:2612021015 done date:2612021015 stat:DELIVRD err:000 text:"
    receipt = parse_receipt(text, {})
    assert (receipt.message_id, receipt.state, receipt.error, receipt.final_status) == (
        "0000000042", "DELIVRD", "000", "delivered")
    tlv = parse_receipt(b"", {TLV_RECEIPTED_MESSAGE_ID: b"abc\0", TLV_MESSAGE_STATE: bytes([5])})
    assert (tlv.message_id, tlv.state, tlv.final_status) == ("abc", "UNDELIV", "undelivered")
    assert parse_receipt(b"id:1 stat:EXPIRED", {}).final_status == "undelivered"
    assert parse_receipt(b"id:1 stat:ENROUTE", {}).final_status is None  # intermediate
    with pytest.raises(ReceiptError, match="receipt without a message id: 'garbage'"):
        parse_receipt(b"garbage", {})
    with pytest.raises(ReceiptError, match="receipt without a state"):
        parse_receipt(b"id:77 sub:001", {})


def test_refusals_that_a_retry_can_get_past_and_those_it_cannot() -> None:
    assert submit_outcome(0x58) == (True, "smpp 0x58 ESME_RTHROTTLED throttling error")
    assert submit_outcome(0x14) == (True, "smpp 0x14 ESME_RMSGQFUL message queue full")
    assert submit_outcome(0x0B) == (False, "smpp 0x0B ESME_RINVDSTADR invalid destination address")
    assert submit_outcome(0xFF) == (False, "smpp 0xFF refused")


def test_cbs_message_identifiers_per_tier_drill_and_language() -> None:
    config = load_broadcast_config()
    assert [config.message_id(Tier.red, False, lang) for lang in ("zh-CN", "en")] == [4371, 4384]
    assert config.message_id(Tier.orange, False, "zh-CN") == 4373
    assert [config.message_id(Tier.red, True, lang) for lang in ("zh-CN", "en")] == [4381, 4394]  # Exercise


def test_broadcast_targets_follow_the_alert_once_it_was_loud_enough() -> None:
    from warning.targeting.directory import load_directory

    config = BroadcastConfig()
    assert broadcast_targets(config, ["440305001", "unmapped:szmb"]) == [
        ("area:440305001:zh-CN", "440305001", "zh-CN"), ("area:440305001:en", "440305001", "en")]
    audience = load_directory().audience  # the directory's policy names the broadcast tiers
    assert [t.value for t, a in audience.items() if a.cell_broadcast] == ["orange", "red"]


def test_the_cbc_message_in_osmo_cbcs_shape() -> None:
    config = BroadcastConfig()
    code = message_code("rainstorm-440305-20261202T0100Z", "440305")
    assert code == message_code("rainstorm-440305-20261202T0100Z", "440305") and 0 <= code < 1024
    body = cbc_message(config, message_id=4371, code=code, update=17, area="440305", language="zh-CN",
                       text="【红色预警】暴雨", tier=Tier.red, broadcasts=broadcasts_until(config, 3600))
    assert body["smscb_message"] == {
        "message_id": 4371,
        "serial_nr": {"serial_nr_decoded": {"geo_scope": "cell_wide", "msg_code": code, "update_nr": 1}},
        "payload": {"payload_decoded": {"character_set": "ucs2", "language": "zh", "data_utf8": "【红色预警】暴雨"}}}
    assert (body["category"], body["repetition_period"], body["num_of_bcast"], body["scope"]) == (
        "high_priority", 60, 61, {"scope_area": {"area_code": "440305"}})
    assert broadcasts_until(config, -5) == 1
