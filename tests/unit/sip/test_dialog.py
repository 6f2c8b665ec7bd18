"""Dialogs (RFC 3261 §12): creation on both sides, CSeq rules, routing, termination."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.sip.dialog import (
    Dialog,
    DialogError,
    DialogId,
    DialogState,
    build_ack,
    create_uac_dialog,
    create_uas_dialog,
    creates_dialog,
    next_request,
    receive_request,
    receive_response,
    request_target,
    terminate,
    uac_dialog_id,
    uas_dialog_id,
)
from pbx.sip.headers import NameAddress, Via, parse_name_addr
from pbx.sip.message import Request, Response, make_request, make_response, parse_message
from pbx.sip.uri import parse_uri

DATA = Path(__file__).resolve().parents[2] / "data" / "sip"


def load(name: str) -> Request | Response:
    return parse_message((DATA / name).read_bytes())


def load_request(name: str) -> Request:
    message = load(name)
    assert isinstance(message, Request)
    return message


def load_response(name: str) -> Response:
    message = load(name)
    assert isinstance(message, Response)
    return message


INVITE = load_request("invite_record_routed_two_proxies.sip")
OK = load_response("ok_invite_record_routed_two_proxies.sip")
RINGING = load_response("ringing_invite_early_dialog.sip")
STRICT_OK = load_response("ok_invite_strict_router.sip")
CALL_ID = "3848276298220188511@atlanta.example.com"
VIA = Via(
    transport="TLS",
    host="client.atlanta.example.com",
    port=5061,
    params=(("branch", "z9hG4bKnew1"),),
)


def with_headers(message: Request, **values: str) -> Request:
    headers = message.headers
    for name, value in values.items():
        headers = headers.with_set(name.replace("_", "-"), value)
    return dataclasses.replace(message, headers=headers)


def in_dialog_request(method: str, seq: int, *, contact: str | None = None) -> Request:
    """A request from the caller (Alice) to the callee (Bob) within the dialog."""
    fields = [("Contact", contact)] if contact else []
    return make_request(
        method,
        parse_uri("sips:bob@client.biloxi.example.com"),
        via=VIA,
        from_=INVITE.from_,
        to=OK.to,
        call_id=CALL_ID,
        cseq=seq,
        headers=fields,
    )


def uac() -> Dialog:
    return create_uac_dialog(INVITE, OK, 10.0, tls=True)


def uas() -> Dialog:
    return create_uas_dialog(INVITE, OK, 10.0, tls=True)


# ---------------------------------------------------------------------------
# Creation


def test_uac_dialog_from_a_2xx() -> None:
    dialog = uac()
    assert dialog.id == DialogId(CALL_ID, "9fxced76sl", "314159")
    assert dialog.state is DialogState.CONFIRMED and dialog.is_uac
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:ss1.atlanta.example.com;lr",
        "sip:ss2.biloxi.example.com;lr",
    ]  # §12.1.2: Record-Route reversed
    assert str(dialog.remote_target) == "sips:bob@client.biloxi.example.com"
    assert (dialog.local_seq, dialog.remote_seq) == (2, None)
    assert dialog.local == INVITE.from_ and dialog.remote == OK.to
    assert dialog.secure
    assert (dialog.created_at, dialog.confirmed_at, dialog.ended_at) == (10.0, 10.0, None)


def test_secure_needs_both_tls_and_a_sips_request_uri() -> None:
    assert not create_uac_dialog(INVITE, OK, 0.0, tls=False).secure
    sip_invite = dataclasses.replace(INVITE, uri=parse_uri("sip:bob@client.biloxi.example.com"))
    assert not create_uac_dialog(sip_invite, OK, 0.0, tls=True).secure
    assert not create_uas_dialog(sip_invite, OK, 0.0, tls=True).secure


def test_uas_dialog_from_the_request_and_its_response() -> None:
    dialog = uas()
    assert dialog.id == DialogId(CALL_ID, "314159", "9fxced76sl")
    assert dialog.state is DialogState.CONFIRMED and not dialog.is_uac
    assert [str(r.uri) for r in dialog.route_set] == [
        "sip:ss2.biloxi.example.com;lr",
        "sip:ss1.atlanta.example.com;lr",
    ]  # §12.1.1: Record-Route in order
    assert str(dialog.remote_target) == "sips:alice@client.atlanta.example.com"
    assert (dialog.local_seq, dialog.remote_seq) == (None, 2)
    assert dialog.local.tag == "314159" and dialog.remote.tag == "9fxced76sl"
    assert dialog.secure


def test_uas_dialog_needs_a_contact_and_a_tagged_response() -> None:
    no_contact = dataclasses.replace(INVITE, headers=INVITE.headers.without("contact"))
    with pytest.raises(DialogError) as info:
        create_uas_dialog(no_contact, OK, 0.0, tls=False)
    assert info.value.status == 400
    with pytest.raises(ValueError):
        create_uas_dialog(INVITE, make_response(INVITE, 180), 0.0, tls=False)


def test_which_responses_create_dialogs() -> None:
    assert creates_dialog(OK) and creates_dialog(RINGING)
    assert not creates_dialog(make_response(INVITE, 100, to_tag="x"))  # a 100 never does
    assert not creates_dialog(make_response(INVITE, 180))  # no To tag
    assert not creates_dialog(make_response(INVITE, 486, to_tag="x"))
    with pytest.raises(ValueError):
        create_uac_dialog(INVITE, make_response(INVITE, 180), 0.0, tls=False)
    assert uac_dialog_id(make_response(INVITE, 180)) is None


def test_early_dialog_is_confirmed_by_the_2xx_with_its_route_set() -> None:
    early = create_uac_dialog(INVITE, RINGING, 1.0, tls=True)
    assert early.state is DialogState.EARLY and early.confirmed_at is None
    ok_one_proxy = dataclasses.replace(
        OK,
        headers=OK.headers.without("record-route").with_added(
            "Record-Route", "<sip:ss9.biloxi.example.com;lr>"
        ),
    )
    confirmed = receive_response(early, ok_one_proxy, 2.0)
    assert confirmed.state is DialogState.CONFIRMED and confirmed.confirmed_at == 2.0
    assert [str(r.uri) for r in confirmed.route_set] == ["sip:ss9.biloxi.example.com;lr"]
    assert receive_response(early, RINGING, 1.5) == early


def test_early_dialog_ends_on_a_non_2xx_final() -> None:
    early = create_uac_dialog(INVITE, RINGING, 1.0, tls=True)
    busy = dataclasses.replace(RINGING, status=486, reason="Busy Here")
    ended = receive_response(early, busy, 3.0)
    assert ended.state is DialogState.TERMINATED and ended.ended_at == 3.0


def test_a_1xx_without_contact_still_gives_a_target() -> None:
    bare = dataclasses.replace(RINGING, headers=RINGING.headers.without("contact"))
    assert create_uac_dialog(INVITE, bare, 0.0, tls=True).remote_target == INVITE.uri


# ---------------------------------------------------------------------------
# Receiving requests (§12.2.2)


def test_remote_cseq_must_increase() -> None:
    dialog = uas()
    dialog = receive_request(dialog, in_dialog_request("INFO", 3), 11.0)
    assert dialog.remote_seq == 3
    for seq in (1, 3):
        with pytest.raises(DialogError) as info:
            receive_request(dialog, in_dialog_request("INFO", seq), 12.0)
        assert info.value.status == 500
    assert receive_request(dialog, in_dialog_request("INFO", 4000), 12.0).remote_seq == 4000


def test_ack_and_cancel_are_not_ordered() -> None:
    dialog = uas()
    ack = in_dialog_request("ACK", 2)
    assert receive_request(dialog, ack, 11.0) == dialog
    assert receive_request(dialog, in_dialog_request("CANCEL", 2), 11.0) == dialog


def test_first_request_from_the_callee_sets_the_uac_remote_seq() -> None:
    dialog = uac()
    from_bob = make_request(
        "INFO",
        parse_uri("sips:alice@client.atlanta.example.com"),
        via=VIA,
        from_=OK.to,
        to=INVITE.from_,
        call_id=CALL_ID,
        cseq=7,
    )
    assert receive_request(dialog, from_bob, 11.0).remote_seq == 7


def test_target_refresh_replaces_the_remote_target() -> None:
    dialog = uas()
    reinvite = in_dialog_request("INVITE", 3, contact="<sips:alice@192.0.2.55:5061>")
    dialog = receive_request(dialog, reinvite, 11.0)
    assert str(dialog.remote_target) == "sips:alice@192.0.2.55:5061"
    info = in_dialog_request("INFO", 4, contact="<sips:alice@elsewhere.example.com>")
    assert receive_request(dialog, info, 12.0).remote_target == dialog.remote_target


def test_bye_ends_the_dialog_and_later_requests_get_481() -> None:
    dialog = receive_request(uas(), in_dialog_request("BYE", 3), 20.0)
    assert dialog.terminated and dialog.ended_at == 20.0
    with pytest.raises(DialogError) as info:
        receive_request(dialog, in_dialog_request("INFO", 4), 21.0)
    assert info.value.status == 481


def test_a_request_of_another_dialog_is_refused() -> None:
    other = with_headers(in_dialog_request("INFO", 3), Call_ID="another-call")
    with pytest.raises(ValueError):
        receive_request(uas(), other, 11.0)
    assert uas_dialog_id(INVITE) is None


# ---------------------------------------------------------------------------
# Sending (§12.2.1.1)


def test_next_request_through_loose_routers() -> None:
    dialog, bye = next_request(uac(), "BYE", 30.0, via=VIA)
    parsed = parse_message(bytes(bye))
    assert isinstance(parsed, Request)
    assert str(parsed.uri) == "sips:bob@client.biloxi.example.com"
    assert parsed.headers.get_all("route") == [
        "<sip:ss1.atlanta.example.com;lr>",
        "<sip:ss2.biloxi.example.com;lr>",
    ]
    assert (parsed.cseq.seq, parsed.cseq.method) == (3, "BYE")
    assert parsed.from_.tag == "9fxced76sl" and parsed.to.tag == "314159"
    assert parsed.call_id == CALL_ID and parsed.top_via.branch == "z9hG4bKnew1"
    assert dialog.local_seq == 3
    assert dialog.terminated and dialog.ended_at == 30.0  # §15.1.1: over when sent


def test_callee_requests_start_the_empty_local_seq() -> None:
    contact = parse_name_addr("<sips:bob@client.biloxi.example.com>")
    dialog, info = next_request(uas(), "INFO", 11.0, via=VIA, contact=contact, initial_seq=100)
    assert info.cseq.seq == 100 and dialog.local_seq == 100
    assert str(info.uri) == "sips:alice@client.atlanta.example.com"
    assert info.from_.tag == "314159" and info.to.tag == "9fxced76sl"
    assert info.headers.get_all("route") == [
        "<sip:ss2.biloxi.example.com;lr>",
        "<sip:ss1.atlanta.example.com;lr>",
    ]
    dialog, again = next_request(dialog, "INFO", 12.0, via=VIA)
    assert again.cseq.seq == 101


def test_strict_router_first_gets_the_request_uri_and_the_target_goes_last() -> None:
    invite = make_request(
        "INVITE",
        parse_uri("sip:trunk@carrier.example.net"),
        via=Via(transport="UDP", host="192.0.2.10", port=5060, params=(("branch", "z9hG4bKinv9"),)),
        from_=parse_name_addr("<sip:1001@pbx.example.com>;tag=from9"),
        to=parse_name_addr("<sip:trunk@carrier.example.net>"),
        call_id="strict-route@192.0.2.10",
        cseq=1,
    )
    dialog = create_uac_dialog(invite, STRICT_OK, 0.0, tls=False)
    uri, routes = request_target(dialog)
    assert str(uri) == "sip:strict.example.net;maddr=203.0.113.5"
    assert routes == ("<sip:loose.example.org;lr>", "<sip:gw@203.0.113.9:5070;transport=udp>")
    _, bye = next_request(dialog, "BYE", 1.0, via=VIA)
    parsed = parse_message(bytes(bye))
    assert isinstance(parsed, Request)
    assert str(parsed.uri) == "sip:strict.example.net;maddr=203.0.113.5"
    assert [str(r.uri) for r in parsed.routes] == [
        "sip:loose.example.org;lr",
        "sip:gw@203.0.113.9:5070;transport=udp",
    ]


def test_strict_router_uri_loses_parameters_a_request_uri_cannot_have() -> None:
    route = NameAddress(uri=parse_uri("sip:strict.example.net;method=INVITE;maddr=10.0.0.1?x=y"))
    dialog = dataclasses.replace(uac(), route_set=(route,))
    uri, routes = request_target(dialog)
    assert str(uri) == "sip:strict.example.net;maddr=10.0.0.1"
    assert routes == ("<sips:bob@client.biloxi.example.com>",)


def test_empty_route_set_goes_straight_to_the_target() -> None:
    dialog = dataclasses.replace(uac(), route_set=())
    assert request_target(dialog) == (dialog.remote_target, ())


def test_ack_for_2xx_reuses_the_invite_cseq() -> None:
    dialog = uac()
    ack = build_ack(dialog, 2, via=VIA, headers=[("Proxy-Authorization", "Digest x")])
    assert (ack.method, ack.cseq.seq, ack.cseq.method) == ("ACK", 2, "ACK")
    assert ack.headers.get_all("route") == [str(r) for r in dialog.route_set]
    assert ack.headers.get("proxy-authorization") == "Digest x"
    assert dialog.local_seq == 2


def test_requests_that_cannot_be_sent() -> None:
    with pytest.raises(ValueError):
        next_request(uac(), "ACK", 0.0, via=VIA)
    with pytest.raises(ValueError):
        next_request(uac(), "CANCEL", 0.0, via=VIA)
    with pytest.raises(ValueError):
        next_request(terminate(uac(), 1.0), "INFO", 2.0, via=VIA)
    early_uas = create_uas_dialog(INVITE, make_response(INVITE, 180, to_tag="e1"), 0.0, tls=False)
    with pytest.raises(ValueError):
        next_request(early_uas, "BYE", 1.0, via=VIA)  # §15: not by the callee
    early_uac = create_uac_dialog(INVITE, RINGING, 0.0, tls=False)
    assert next_request(early_uac, "BYE", 1.0, via=VIA)[0].terminated  # the caller may


# ---------------------------------------------------------------------------
# Responses within the dialog (§12.2.1.2)


def response_to(request: Request, status: int, contact: str | None = None) -> Response:
    headers = [("Contact", contact)] if contact else []
    return make_response(request, status, headers=headers)


def test_2xx_to_a_target_refresh_updates_the_target() -> None:
    dialog, reinvite = next_request(uac(), "INVITE", 11.0, via=VIA)
    ok = response_to(reinvite, 200, "<sips:bob@192.0.2.77:5061>")
    assert str(receive_response(dialog, ok, 11.5).remote_target) == "sips:bob@192.0.2.77:5061"
    busy = response_to(reinvite, 491)
    assert receive_response(dialog, busy, 11.5) == dialog  # a failed re-INVITE keeps the dialog


@pytest.mark.parametrize("status", [408, 481])
def test_408_and_481_end_the_dialog(status: int) -> None:
    dialog, info = next_request(uac(), "INFO", 11.0, via=VIA)
    ended = receive_response(dialog, response_to(info, status), 12.0)
    assert ended.terminated and ended.ended_at == 12.0
    assert terminate(ended, 13.0) == ended  # already over


def test_responses_of_another_dialog_are_refused() -> None:
    other = dataclasses.replace(OK, headers=OK.headers.with_set("To", "<sips:bob@x>;tag=zz"))
    with pytest.raises(ValueError):
        receive_response(uac(), other, 1.0)


# ---------------------------------------------------------------------------
# Both ends together, and random CSeq streams


def test_uac_and_uas_views_mirror_each_other() -> None:
    caller, callee = uac(), uas()
    assert caller.id.local_tag == callee.id.remote_tag
    assert caller.id.remote_tag == callee.id.local_tag
    caller, bye = next_request(caller, "BYE", 40.0, via=VIA)
    callee = receive_request(callee, bye, 40.1)
    assert caller.terminated and callee.terminated


@given(st.lists(st.integers(min_value=1, max_value=2**31 - 1), max_size=30))
def test_remote_seq_is_the_highest_accepted(seqs: list[int]) -> None:
    dialog = uas()
    highest = dialog.remote_seq
    assert highest is not None
    for seq in seqs:
        try:
            dialog = receive_request(dialog, in_dialog_request("INFO", seq), 11.0)
        except DialogError as exc:
            assert exc.status == 500 and seq <= highest
        else:
            assert seq > highest
            highest = seq
        assert dialog.remote_seq == highest
        assert dialog.state is DialogState.CONFIRMED
