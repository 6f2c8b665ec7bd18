"""A minimal registering phone over a real UDP socket, for integration tests.

It answers the switch's OPTIONS (qualify) and registers with digest authentication,
choosing among the offered algorithms as RFC 8760 asks (the first one it supports).
"""

from __future__ import annotations

import itertools
import socket
from dataclasses import replace

from pbx.sip.auth import DigestAlgorithm
from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.message import Request, Response, make_response, parse_message

_ids = itertools.count(1)


class SipPhone:
    def __init__(
        self, number: str, password: str, switch: tuple[str, int], host: str = "127.0.0.1"
    ):
        self.number = number
        self.password = password
        self.switch = switch
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()
        self.call_id = f"phone-{number}-{next(_ids)}@test"
        self.cseq = 0
        self.options_answered = 0

    def close(self) -> None:
        self.sock.close()

    def register_request(self, *, expires: int = 300, authorization: str | None = None) -> bytes:
        self.cseq += 1
        host, port = self.switch
        auth = f"Authorization: {authorization}\r\n" if authorization else ""
        return (
            f"REGISTER sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch=z9hG4bK-ph{next(_ids)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{self.number}@{host}>;tag=ph{self.number}\r\n"
            f"To: <sip:{self.number}@{host}>\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {self.cseq} REGISTER\r\n"
            f"Contact: <sip:{self.number}@{self.host}:{self.port}>\r\n"
            f"Expires: {expires}\r\n"
            "User-Agent: test-phone/1.0\r\n"
            f"{auth}"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    def exchange(self, data: bytes, timeout: float = 5.0) -> Response:
        """Send a request and return its final response (answering any OPTIONS meanwhile)."""
        self.sock.sendto(data, self.switch)
        while True:
            message = self.receive(timeout)
            if isinstance(message, Response) and message.status >= 200:
                return message

    def receive(self, timeout: float) -> Request | Response:
        while True:
            message = self.receive_one(timeout)
            if message is not None:
                return message

    def receive_one(self, timeout: float) -> Request | Response | None:
        """One datagram: an OPTIONS is answered here (None), anything else is returned."""
        self.sock.settimeout(timeout)
        data, addr = self.sock.recvfrom(65535)
        message = parse_message(data)
        if isinstance(message, Request) and message.method == "OPTIONS":
            self.sock.sendto(bytes(make_response(message, 200, to_tag="phone")), addr)
            self.options_answered += 1
            return None
        return message

    def answer(
        self,
        challenge: Response,
        *,
        password: str | None = None,
        algorithm: DigestAlgorithm | None = None,
    ) -> str:
        """An Authorization value for a 401: the challenge RFC 8760 picks, or (to test a
        downgrade) the first one answered as if it named ``algorithm``."""
        chosen = choose_challenge(challenge.headers.get_all("www-authenticate"))
        assert chosen is not None
        if algorithm is not None:
            chosen = replace(chosen, algorithm=algorithm)
        host, port = self.switch
        credentials = answer_challenge(
            chosen,
            username=self.number,
            password=self.password if password is None else password,
            method="REGISTER",
            uri=f"sip:{host}:{port}",
            cnonce=f"cn{next(_ids)}",
        )
        return credentials.to_header_value()

    def register(self, *, expires: int = 300, password: str | None = None) -> Response:
        challenge = self.exchange(self.register_request(expires=expires))
        if challenge.status != 401:
            return challenge
        authorization = self.answer(challenge, password=password)
        return self.exchange(self.register_request(expires=expires, authorization=authorization))

    def answer_options_until(self, count: int, timeout: float) -> None:
        """Serve qualify probes until ``count`` were answered (or fail after ``timeout``)."""
        while self.options_answered < count:
            self.receive_one(timeout)
