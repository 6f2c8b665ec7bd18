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

    def connect(self, call_id: int, audio: Any) -> None:
        self.player.startTransmit(audio)
        if call_id not in self.recorders:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(str(self.record_dir / f"call-{call_id}.wav"))
            self.recorders[call_id] = recorder
        audio.startTransmit(self.recorders[call_id])

    def close(self, call_id: int) -> str | None:
        """Drop the call's recorder, which writes the WAV header; the file's path."""
        if self.recorders.pop(call_id, None) is None:
            return None
        return str(self.record_dir / f"call-{call_id}.wav")


class Call(pj.Call):  # type: ignore[misc]
    def __init__(self, phone: Phone, account: Any, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.phone = phone

    def onCallState(self, prm: Any) -> None:  # noqa: N802 (pjsua2's callback names)
        info = self.getInfo()
        emit(
            "call_state", call=info.id, state=info.stateText, code=info.lastStatusCode,
            reason=info.lastReason, role="caller" if info.role == pj.PJSIP_ROLE_UAC else "callee",
        )  # fmt: skip
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            recording = self.phone.media.close(info.id)
            emit("call_closed", call=info.id, code=info.lastStatusCode, recording=recording)
            self.phone.calls.pop(info.id, None)

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = _MEDIA_STATUS.get(media.status, str(media.status))
            emit("media", call=info.id, status=status, dir=_DIRECTIONS.get(media.dir, media.dir))
            if media.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                self.phone.media.connect(info.id, self.getAudioMedia(media.index))

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        emit("dtmf", call=self.getId(), digit=prm.digit, method=prm.method)

    def onStreamStarted(self, prm: Any) -> None:  # noqa: N802
        info = self.getStreamInfo(prm.streamIdx)
        emit("stream", call=self.getId(), codec=info.codecName, remote=info.remoteRtpAddress)


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


class Phone:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        ep_cfg = pj.EpConfig()
        ep_cfg.uaConfig.threadCnt = 0
        ep_cfg.uaConfig.mainThreadOnly = True
        ep_cfg.uaConfig.userAgent = "pjsua2-test-agent"
        ep_cfg.logConfig.level = 5
        ep_cfg.logConfig.consoleLevel = 0
        ep_cfg.logConfig.msgLogging = True
        ep_cfg.logConfig.filename = config["log"]
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
        elif name == "dtmf":
            self.current(cmd).dialDtmf(cmd["digits"])
        elif name == "hangup":
            self.current(cmd).hangup(pj.CallOpParam())
        elif name == "quit":
            return False
        else:
            raise ValueError(f"unknown command {name!r}")
        emit("done", cmd=name)
        return True

    def shutdown(self) -> None:
        self.ep.hangupAllCalls()
        for call_id in list(self.media.recorders):
            self.media.close(call_id)
        self.media.player = None
        self.calls.clear()
        self.account = None
        self.ep.libDestroy()


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
    while running:
        phone.ep.libHandleEvents(10)
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
