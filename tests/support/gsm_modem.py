"""Gammu's dummy phone as the test modem: real Gammu code (encoding, folders, the backup file format) on a
folder. Incoming SMS and delivery reports are put into its inbox with a second Gammu state machine on
the same folder, as a network would deliver them; faults a folder cannot show (a locked SIM, no network,
a modem that goes silent or is unplugged mid-send) come from ``FaultyMachine``, which wraps the real
dummy machine and changes only the answers a test asks it to. It also keeps each part the channel sent
(the dummy driver encodes a sent part and forgets it) and numbers them as a modem does: the dummy
answers 255 to every send, a real modem a reference per part, which delivery reports name."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import gammu

from yaguar.alerts.channels.gsm_modem import RECORD_FOLDER


def dummy_section(folder: Path, **over: Any) -> dict[str, Any]:
    """An ``[alerts.gsm]`` section for the dummy phone in ``folder``."""
    return {"device": str(folder), "connection": "none", "model": "dummy", "inbox_interval_s": 0.1, **over}


class DummyNetwork:
    """The far side of the dummy modem: what it sent, and messages 'arriving' in its inbox."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.machine = gammu.StateMachine()
        self.machine.SetConfig(
            0, {"Device": str(folder), "Connection": "none", "Model": "dummy", "StartInfo": False}
        )
        self.machine.Init()

    def deliver(self, number: str, text: str) -> None:
        """An SMS from ``number`` arrives at the modem."""
        for part in gammu.EncodeSMS(
            {"Class": -1, "Unicode": False, "Entries": [{"ID": "ConcatenatedTextLong", "Buffer": text}]}
        ):
            part.update({"Folder": 1, "Number": number, "State": "UnRead", "Type": "Deliver"})
            part["SMSC"] = {"Location": 1}
            self.machine.AddSMS(part)

    def report(self, number: str, reference: int, status: int = 0) -> None:
        """A delivery report for the part with ``reference`` (TP-Status 0: delivered; 64+: failed)."""
        self.machine.AddSMS(
            {
                "Type": "Status_Report",
                "Folder": 1,
                "Number": number,
                "MessageReference": reference,
                "DeliveryStatus": status,
                "SMSC": {"Location": 1},
                "Text": "",
                "State": "UnRead",
                "Coding": "Default_No_Compression",
            }
        )

    def records(self) -> list[str]:
        """The states (Sent, UnSent) of the send records the channel keeps in the modem's memory."""
        found = []
        for path in sorted((self.folder / "sms" / str(RECORD_FOLDER)).glob("*")):
            found.append("Sent" if "State = Sent" in path.read_text(errors="replace") else "UnSent")
        return found

    def inbox_count(self) -> int:
        return len(list((self.folder / "sms" / "1").glob("*")))


class FaultyMachine:
    """A real dummy state machine with some answers replaced (class attributes set per test)."""

    security: str | None = None  # e.g. "PIN": the SIM asks for a PIN
    accept_pin: str | None = None  # the PIN that unlocks it
    network_state: str | None = None  # e.g. "NoNetwork", "Searching"
    hang_send_s: float = 0.0  # SendSMS blocks this long first
    unplug_after_parts: int | None = None  # SendSMS raises a device error after this many parts
    refuse_sends: bool = False  # SendSMS answers with a network error (nothing sent)
    sent: list[dict[str, Any]] = []  # noqa: RUF012  (shared on purpose: the test reads it)
    lock = threading.Lock()

    def __init__(self) -> None:
        self.inner = gammu.StateMachine()
        self.pin_entered = False

    @classmethod
    def reset(cls) -> None:
        cls.security = cls.accept_pin = cls.network_state = None
        cls.hang_send_s, cls.unplug_after_parts, cls.refuse_sends = 0.0, None, False
        cls.sent = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def GetSecurityStatus(self) -> str | None:  # noqa: N802 (Gammu's names)
        if self.security and not self.pin_entered:
            return self.security
        return self.inner.GetSecurityStatus()

    def EnterSecurityCode(self, kind: str, code: str) -> None:  # noqa: N802
        if code != type(self).accept_pin:
            raise gammu.ERR_SECURITYERROR(
                {"Text": "Security error. Maybe no PIN?", "Where": "Enter", "Code": 0}
            )
        self.pin_entered = True

    def GetNetworkInfo(self) -> dict[str, Any]:  # noqa: N802
        info = dict(self.inner.GetNetworkInfo())
        if self.network_state:
            info["State"] = self.network_state
        return info

    def SendSMS(self, message: dict[str, Any]) -> int:  # noqa: N802
        cls = type(self)
        if cls.hang_send_s:
            time.sleep(cls.hang_send_s)
        if cls.refuse_sends:
            raise gammu.ERR_NETWORK_ERROR({"Text": "Network error.", "Where": "SendSMS", "Code": 0})
        with cls.lock:
            if cls.unplug_after_parts is not None and len(cls.sent) >= cls.unplug_after_parts:
                raise gammu.ERR_DEVICEWRITEERROR(
                    {"Text": "Error writing to the device.", "Where": "SendSMS", "Code": 0}
                )
            self.inner.SendSMS(message)  # Gammu's own PDU encoding: a part it cannot encode fails here
            cls.sent.append(dict(message))
            return len(cls.sent) % 256
