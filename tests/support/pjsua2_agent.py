"""A pjsua2 (PJSIP 2.15) softphone in its own process, driven by JSON lines.

Run by tests.support.pjsua2_phone, never imported by pytest: a crash or a stuck thread inside
pjsip then ends this process only. Commands arrive one JSON object a line on stdin
(``{"cmd": "register", ...}``); events leave one a line on stdout (``{"event": ...}``). pjsip's
own log (with every SIP message) goes to the file named in the configuration, and anything C
code prints is sent to stderr so it cannot corrupt the event stream.

Every pjsua2 call and callback runs on this process's main thread (``threadCnt = 0``,
``mainThreadOnly``): the loop polls ``libHandleEvents`` and a reader thread only queues lines.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pjsua2 as pj  # type: ignore[import-untyped]

_EVENTS = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # pjsip's console writer and any printf now land on stderr


def emit(event: str, **fields: Any) -> None:
    _EVENTS.write(json.dumps({"event": event, **fields}) + "\n")


class Media:
    """The phone's microphone (a looping WAV) and ear (a WAV recorder per call)."""

    def __init__(self, mic_wav: str, record_dir: str) -> None:
        self.player = pj.AudioMediaPlayer()
        self.player.createPlayer(mic_wav)  # loops by default
        self.record_dir = Path(record_dir)
        self.recorders: dict[int, Any] = {}
        self.closing: dict[int, float] = {}

    def connect(self, call_id: int, audio: Any) -> None:
        self.player.startTransmit(audio)
        if call_id not in self.recorders:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(str(self.record_dir / f"call-{call_id}.wav"))
            self.recorders[call_id] = recorder
        audio.startTransmit(self.recorders[call_id])

    def close(self, call_id: int) -> None:
        """Drop the call's recorder; pjsua's conference bridge closes the file later, on its
        clock thread, and ``finished`` tells when the WAV header says the final length."""
        if self.recorders.pop(call_id, None) is not None:
            self.closing[call_id] = time.monotonic() + 5

    def finished(self) -> list[tuple[int, str, bool]]:
        """(call, path, complete) of each recording now closed (or given up on after 5 s)."""
        done = []
        for call_id, deadline in list(self.closing.items()):
            path = self.record_dir / f"call-{call_id}.wav"
            complete = _wav_complete(path)
            if complete or time.monotonic() > deadline:
                del self.closing[call_id]
                done.append((call_id, str(path), complete))
        return done


def _wav_complete(path: Path) -> bool:
    """Whether the RIFF and data chunk lengths in the header match the file (pjmedia's WAV
    writer fills them in when it closes the file)."""
    try:
        with path.open("rb") as wav:
            header = wav.read(44)
        size = path.stat().st_size
    except OSError:
        return False
    if len(header) < 44 or header[:4] != b"RIFF":
        return False
    riff, data = int.from_bytes(header[4:8], "little"), int.from_bytes(header[40:44], "little")
    return riff == size - 8 and data == size - 44 and data > 0


class Call(pj.Call):  # type: ignore[misc]
    def __init__(self, phone: Phone, account: Any, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.phone = phone
        self.reported_rx = self.stream_rx = self.earlier_rx = 0

    def onCallState(self, prm: Any) -> None:  # noqa: N802 (pjsua2's callback names)
        info = self.getInfo()
        emit(
            "call_state", call=info.id, state=info.stateText, code=info.lastStatusCode,
            reason=info.lastReason, role="caller" if info.role == pj.PJSIP_ROLE_UAC else "callee",
        )  # fmt: skip
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.phone.media.close(info.id)
            emit("call_closed", call=info.id, code=info.lastStatusCode)
            # Kept until shutdown deletes it (see there) while pjsua still runs.
            self.phone.ended.append(self.phone.calls.pop(info.id))

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = _MEDIA_STATUS.get(media.status, str(media.status))
            codec = remote = None
            if media.status != pj.PJSUA_CALL_MEDIA_NONE:
                stream = self.getStreamInfo(media.index)
                codec, remote = stream.codecName, stream.remoteRtpAddress
            emit("media", call=info.id, status=status, dir=_DIRECTIONS.get(media.dir, media.dir),
                 codec=codec, remote=remote)  # fmt: skip
            if media.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                self.phone.media.connect(info.id, self.getAudioMedia(media.index))

    def report_audio(self) -> None:
        """Emit an ``audio`` event each time another 25 RTP packets arrived (half a second);
        the counts add up every stream the call had (a re-INVITE may start a new one)."""
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status == pj.PJSUA_CALL_MEDIA_NONE:
                continue
            try:
                rtcp = self.getStreamStat(media.index).rtcp
            except pj.Error:
                continue  # no stream yet (or any more)
            received = rtcp.rxStat.pkt
            if received < self.stream_rx:
                self.earlier_rx += self.stream_rx  # a new stream: its counters start at 0
            self.stream_rx = received
            total = self.earlier_rx + received
            if total >= self.reported_rx + 25:
                self.reported_rx = total
                emit("audio", call=info.id, rx_packets=total, tx_packets=rtcp.txStat.pkt,
                     rx_lost=rtcp.rxStat.loss)  # fmt: skip

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        emit("dtmf", call=self.getId(), digit=prm.digit, method=prm.method)


_MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}
_DIRECTIONS = {
    pj.PJMEDIA_DIR_NONE: "inactive",
    pj.PJMEDIA_DIR_ENCODING: "sendonly",
    pj.PJMEDIA_DIR_DECODING: "recvonly",
    pj.PJMEDIA_DIR_ENCODING_DECODING: "sendrecv",
}


class Account(pj.Account):  # type: ignore[misc]
    def __init__(self, phone: Phone) -> None:
        super().__init__()
        self.phone = phone

    def onRegState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        emit("registered" if info.regIsActive else "unregistered", code=prm.code,
             reason=prm.reason, expires=info.regExpiresSec)  # fmt: skip

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        call = Call(self.phone, self, prm.callId)
        self.phone.calls[prm.callId] = call
        info = call.getInfo()
        emit("incoming", call=prm.callId, remote=info.remoteUri)
        if self.phone.auto_answer:
            self.phone.answer(call)


class FileLog(pj.LogWriter):  # type: ignore[misc]
    """pjsip's log, written and flushed line by line: pjsua's own log file goes through stdio's
    buffer, so a test reading it right after an event would miss the last messages. With
    ``mainThreadOnly`` pjsua2 hands lines logged on other threads to the main thread."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.file = open(path, "w", buffering=1)  # noqa: SIM115 (closed after libDestroy)

    def write(self, entry: Any) -> None:
        self.file.write(entry.msg if entry.msg.endswith("\n") else entry.msg + "\n")


class Phone:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        ep_cfg = pj.EpConfig()
        ep_cfg.uaConfig.threadCnt = 0
        ep_cfg.uaConfig.mainThreadOnly = True
        ep_cfg.uaConfig.userAgent = "pjsua2-test-agent"
        self.log = FileLog(config["log"])
        ep_cfg.logConfig.level = 5
        ep_cfg.logConfig.consoleLevel = 5
        ep_cfg.logConfig.msgLogging = True
        ep_cfg.logConfig.writer = self.log
        ep_cfg.medConfig.threadCnt = 0
        ep_cfg.medConfig.clockRate = 8000
        ep_cfg.medConfig.sndClockRate = 8000
        ep_cfg.medConfig.noVad = True  # a tone is steady; no silence suppression either way
        ep_cfg.medConfig.ecTailLen = 0
        self.ep.libInit(ep_cfg)
        sip = pj.TransportConfig()
        sip.port = config["sip_port"]
        sip.boundAddress = "127.0.0.1"
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, sip)
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        for codec_id, priority in config.get("codec_priorities", {}).items():
            self.ep.codecSetPriority(codec_id, priority)
        self.media = Media(config["mic_wav"], config["record_dir"])
        self.account: Account | None = None
        self.calls: dict[int, Call] = {}
        self.ended: list[Call] = []
        self.auto_answer = False

    def register(self, cmd: dict[str, Any]) -> None:
        host = cmd["registrar"]
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:{cmd['user']}@{host}"
        cfg.regConfig.registrarUri = f"sip:{host}"
        cfg.regConfig.timeoutSec = cmd.get("expires", 300)
        cred = pj.AuthCredInfo("digest", "*", cmd["user"], 0, cmd["password"])
        cfg.sipConfig.authCreds.append(cred)
        cfg.natConfig.iceEnabled = False
        cfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        cfg.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        low, high = self.config["rtp_ports"]
        cfg.mediaConfig.transportConfig.port = low
        cfg.mediaConfig.transportConfig.portRange = high - low + 1
        cfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        self.auto_answer = bool(cmd.get("auto_answer", False))
        self.account = Account(self)
        self.account.create(cfg)

    def call(self, cmd: dict[str, Any]) -> None:
        assert self.account is not None, "register first"
        call = Call(self, self.account)
        call.makeCall(cmd["uri"], pj.CallOpParam(True))
        self.calls[call.getId()] = call
        emit("dialing", call=call.getId(), uri=cmd["uri"])

    def answer(self, call: Call) -> None:
        prm = pj.CallOpParam()
        prm.statusCode = 200
        call.answer(prm)

    def current(self, cmd: dict[str, Any]) -> Call:
        if "call" in cmd:
            return self.calls[int(cmd["call"])]
        [call] = self.calls.values()
        return call

    def handle(self, cmd: dict[str, Any]) -> bool:
        """Carry out one command; False when the phone should stop."""
        name = cmd.get("cmd")
        if name == "register":
            self.register(cmd)
        elif name == "call":
            self.call(cmd)
        elif name == "answer":
            self.answer(self.current(cmd))
        elif name == "hold":
            self.current(cmd).setHold(pj.CallOpParam(True))
        elif name in ("unhold", "reinvite"):
            prm = pj.CallOpParam(True)
            prm.opt.flag = pj.PJSUA_CALL_UNHOLD
            self.current(cmd).reinvite(prm)
        elif name == "dtmf" and cmd.get("method", "rfc4733") == "rfc4733":
            self.current(cmd).dialDtmf(cmd["digits"])  # RFC 4733 events in the RTP stream
        elif name == "dtmf" and cmd["method"] == "info":
            prm = pj.CallSendDtmfParam()
            prm.method = pj.PJSUA_DTMF_METHOD_SIP_INFO  # application/dtmf-relay
            prm.digits = cmd["digits"]
            self.current(cmd).sendDtmf(prm)
        elif name == "hangup":
            self.current(cmd).hangup(pj.CallOpParam())
        elif name == "quit":
            return False
        else:
            raise ValueError(f"unknown command {name!r}")
        emit("done", cmd=name)
        return True

    def poll(self) -> None:
        """What the main loop does between commands: audio counts and finished recordings."""
        for call in list(self.calls.values()):
            call.report_audio()
        for call_id, path, complete in self.media.finished():
            emit("recording", call=call_id, path=path, complete=complete)

    def shutdown(self) -> None:
        self.ep.hangupAllCalls()
        for call_id in list(self.media.recorders):
            self.media.close(call_id)
        self.media.player = None
        # Delete every Call now, while pjsua lives: the SWIG wrapper keeps references of its
        # own to a Call that had callbacks (refcount 4, no Python referrer), so Python would
        # delete it at exit, after libDestroy, and pjsua_call_set_user_data asserts (abort).
        for call in [*self.calls.values(), *self.ended]:
            pj.Call.__swig_destroy__(call)
        self.calls.clear()
        self.ended.clear()
        self.account = None
        self.ep.libDestroy()
        self.log.file.close()


def _read_stdin(lines: queue.Queue[str | None]) -> None:
    for line in sys.stdin:
        lines.put(line)
    lines.put(None)


def main() -> int:
    config = json.loads(sys.argv[1])
    phone = Phone(config)
    emit("ready", sip_port=config["sip_port"])
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_stdin, args=(lines,), daemon=True).start()
    running = True
    next_report = time.monotonic()
    while running:
        phone.ep.libHandleEvents(10)
        if time.monotonic() >= next_report:
            next_report += 0.1
            phone.poll()
        try:
            line = lines.get_nowait()
        except queue.Empty:
            continue
        if line is None:
            break  # the test closed our stdin: stop as for quit
        try:
            running = phone.handle(json.loads(line))
        except (pj.Error, KeyError, ValueError, AssertionError) as error:
            info = error.info() if isinstance(error, pj.Error) else repr(error)
            emit("error", line=line.strip(), error=info)
    phone.shutdown()
    emit("quit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
