"""A USB GSM modem through Gammu, used from ONE thread (a Gammu state machine is not thread-safe).

Everything here is blocking; ``gsm.py`` runs it on the modem's own thread. What it does:

* connects (and reconnects after an error), enters the SIM's PIN at most once per connection (a wrong
  PIN tried again and again would lock the SIM for good), and reads signal, registration and SIM state;
* sends one message as the parts Gammu encodes (GSM-7 or UCS-2, concatenated: the same 160/153 and
  70/67 rules as ``segments.py``), asking for a delivery report;
* keeps a record of each send in the modem's own memory, written BEFORE the modem is asked to send and
  marked sent after it accepted every part, so a send cut by a crash is settled from the modem later
  (the newest ``keep_records`` are kept: a send still unsettled after that many newer ones is taken
  for never sent);
* reads incoming SMS (replies) and delivery reports, and deletes them once handed over.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import gammu

from ..config import GsmConfig
from ..segments import is_gsm7

log = logging.getLogger(__name__)

RECORD_FOLDER = 2  # the modem's outbox folder ("sent items"); Gammu's folder 1 is the inbox
_RECORD = re.compile(r"^yaguar d=(\d+)(?: mr=([0-9,]*))?$")
REGISTERED = frozenset({"HomeNetwork", "RoamingNetwork"})
# Errors after which the port is probably gone: the next call reconnects.
LINK_ERRORS = (
    gammu.ERR_DEVICENOTEXIST,
    gammu.ERR_DEVICEOPENERROR,
    gammu.ERR_DEVICEREADERROR,
    gammu.ERR_DEVICEWRITEERROR,
    gammu.ERR_DEVICENOTWORK,
    gammu.ERR_DEVICENOPERMISSION,
    gammu.ERR_NOTCONNECTED,
    gammu.ERR_TIMEOUT,
)


class ModemDownError(Exception):
    """The modem cannot send now and surely sent nothing: absent, SIM locked, not registered."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # absent | sim_locked | no_sim | not_registered | modem_error


class ModemLostError(Exception):
    """The modem failed while it may have been sending: whether the message went out is unknown."""


@dataclass
class ModemState:
    present: bool = False
    sim: str = "unknown"  # ready | PIN | PUK | ... | absent | unknown
    registration: str = "unknown"  # Gammu's network state: HomeNetwork, RoamingNetwork, NoNetwork, ...
    signal_percent: int | None = None
    operator: str | None = None
    error: str | None = None
    checked_at: datetime | None = None

    @property
    def registered(self) -> bool:
        return self.present and self.sim == "ready" and self.registration in REGISTERED

    def as_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "sim": self.sim,
            "registration": self.registration,
            "registered": self.registered,
            "signal_percent": self.signal_percent,
            "operator": self.operator,
            "error": self.error,
            "checked_at": self.checked_at.isoformat() if self.checked_at else None,
        }


@dataclass(frozen=True)
class Incoming:
    """A reply (``kind`` sms) or a delivery report (``kind`` report) read from the modem."""

    kind: str
    number: str
    text: str = ""
    reference: int | None = None  # the message reference a report is about
    status: int | None = None  # TP-Status of a report: 0-31 delivered, 32-63 still trying, 64+ failed
    places: tuple[tuple[int, int], ...] = ()  # where its parts are in the modem (folder, location)


@dataclass
class SendRecord:
    delivery_id: int
    sent: bool
    references: list[int] = field(default_factory=list)


Place = tuple[int, int]  # (folder, location) of a message in the modem's memory


def place_of(message: dict[str, Any]) -> Place:
    return int(message["Folder"]), int(message["Location"])


def machine_config(config: GsmConfig) -> dict[str, Any]:
    return {
        "Device": config.device,
        "Connection": config.connection,
        "Model": config.model,
        "StartInfo": False,
        "UseGlobalDebugFile": False,
        "SyncTime": False,
    }


def gammu_error(exc: Exception) -> str:
    """Gammu's own words for an error: its exceptions carry a dict with 'Text' and 'Where'."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return f"{info.get('Text', exc)} ({type(exc).__name__}, in {info.get('Where', '?')})"


def encode(body: str, number: str, smsc: str | None, report: bool) -> list[dict[str, Any]]:
    """The parts Gammu sends for ``body``: UCS-2 only when a character is outside GSM-7."""
    parts: list[dict[str, Any]] = gammu.EncodeSMS(
        {
            "Class": -1,
            "Unicode": not is_gsm7(body),
            "Entries": [{"ID": "ConcatenatedTextLong", "Buffer": body}],
        }
    )
    for part in parts:
        part["SMSC"] = {"Number": smsc} if smsc else {"Location": 1}
        part["Number"] = number
        if report:
            part["Type"] = "Status_Report"  # Gammu's way to set TP-SRR on a submitted message
    return parts


class Modem:
    """The modem behind one Gammu state machine. Not thread-safe: call from one thread only."""

    def __init__(
        self, config: GsmConfig, pin: str | None, factory: Callable[[], Any] = gammu.StateMachine
    ) -> None:
        self.config = config
        self.pin = pin
        self.factory = factory
        self.machine: Any = None
        self.state = ModemState()

    # -- connection ---------------------------------------------------------------------------------
    def connect(self) -> Any:
        if self.machine is not None:
            return self.machine
        machine = self.factory()
        machine.SetConfig(0, machine_config(self.config))
        try:
            machine.Init()
        except gammu.GSMError as exc:
            self.state = ModemState(error=f"modem absent: {gammu_error(exc)}", checked_at=datetime.now(UTC))
            raise ModemDownError("absent", f"no modem at {self.config.device}: {gammu_error(exc)}") from exc
        self.machine = machine
        try:
            self._unlock(machine)
        except ModemDownError:
            self.disconnect()
            raise
        return machine

    def _unlock(self, machine: Any) -> None:
        try:
            status = machine.GetSecurityStatus()
        except gammu.ERR_NOSIM as exc:
            self.state.sim = "absent"
            raise ModemDownError("no_sim", "the modem has no SIM card") from exc
        if status is None:
            return
        if status == "PIN" and self.pin:
            # Once per connection: the SIM counts wrong PINs and locks itself after three.
            try:
                machine.EnterSecurityCode("PIN", self.pin)
            except gammu.GSMError as exc:
                self.pin = None  # never again with this PIN: the next try could be the SIM's last
                raise ModemDownError("sim_locked", f"the SIM refused the PIN: {gammu_error(exc)}") from exc
            status = machine.GetSecurityStatus()
            if status is None:
                return
        hint = "set YAGUAR_GSM_PIN" if status == "PIN" else "unlock it in a phone"
        self.state.sim = str(status)
        raise ModemDownError("sim_locked", f"the SIM is locked ({status}): {hint}")

    def disconnect(self) -> None:
        machine, self.machine = self.machine, None
        if machine is not None:
            try:
                machine.Terminate()
            except gammu.GSMError:
                log.debug("gammu: terminate failed (the modem is probably gone)")

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """One Gammu call; an error on the link drops the connection so the next call reconnects."""
        machine = self.connect()
        try:
            return getattr(machine, name)(*args, **kwargs)
        except LINK_ERRORS:
            self.disconnect()
            raise

    # -- state --------------------------------------------------------------------------------------
    def refresh(self) -> ModemState:
        """Read SIM, registration and signal; never raises (the state says what is wrong)."""
        state = ModemState(checked_at=datetime.now(UTC))
        try:
            self.connect()
            state.present, state.sim = True, "ready"
            network = self._call("GetNetworkInfo")
            state.registration = str(network.get("State", "unknown"))
            state.operator = str(network.get("NetworkName") or network.get("NetworkCode") or "") or None
            state.signal_percent = int(self._call("GetSignalQuality").get("SignalPercent", 0))
        except ModemDownError as exc:
            state.present = exc.reason != "absent"
            state.sim = {"sim_locked": self.state.sim, "no_sim": "absent"}.get(exc.reason, state.sim)
            state.error = str(exc)
        except gammu.GSMError as exc:
            state.error = gammu_error(exc)
        self.state = state
        return state

    def require_registered(self) -> None:
        state = self.refresh()
        if state.registered:
            return
        if state.error:
            if not state.present:
                reason = "absent"
            elif state.sim not in ("ready", "unknown"):
                reason = "sim_locked" if state.sim != "absent" else "no_sim"
            else:
                reason = "modem_error"
            raise ModemDownError(reason, state.error)
        raise ModemDownError(
            "not_registered", f"the modem is not registered on a network ({state.registration})"
        )

    # -- sending ------------------------------------------------------------------------------------
    def send(self, delivery_id: int, number: str, body: str) -> list[int]:
        """Send one message; returns the message reference of each part.

        Raises ModemDownError when nothing went out, ModemLostError when some part may have."""
        self.require_registered()
        parts = encode(body, number, self.config.smsc, self.config.delivery_reports)
        unsent = self._add_record(SendRecord(delivery_id, sent=False), number)
        references: list[int] = []
        for index, part in enumerate(parts):
            try:
                references.append(int(self._call("SendSMS", part)))
            except gammu.GSMError as exc:
                if index == 0 and not isinstance(exc, LINK_ERRORS):
                    # The network refused the first part outright (no credit, barred): nothing went out.
                    self._delete_record(unsent)
                    raise ModemDownError(
                        "not_registered", f"the network refused the message: {gammu_error(exc)}"
                    ) from exc
                raise ModemLostError(f"part {index + 1} of {len(parts)}: {gammu_error(exc)}") from exc
        # Accepted: from here on nothing may turn this into a failure (that would send it again).
        # Marked sent by a second record, then the first is deleted: Gammu's AT driver can add and
        # delete messages in the modem but not change one. After a crash in between, sent wins.
        try:
            self._add_record(SendRecord(delivery_id, sent=True, references=references), number)
            self._delete_record(unsent)
        except gammu.GSMError as exc:
            log.warning("gsm: delivery %s went out but its record was not marked sent: %s", delivery_id, exc)
        return references

    def _add_record(self, record: SendRecord, number: str) -> Place | None:
        """Write a record of a send into the modem; its location, or None when the modem cannot keep
        one (the message still goes: an alert matters more than settling a crash without it)."""
        text = f"yaguar d={record.delivery_id}"
        if record.sent:
            text += " mr=" + ",".join(str(r) for r in record.references)
        message = {
            "Folder": RECORD_FOLDER,
            "State": "Sent" if record.sent else "UnSent",
            "Number": number,
            "SMSC": {"Location": 1},
            "Text": text,
            "Coding": "Default_No_Compression",
            "Type": "Submit",
        }
        for attempt in range(2):
            try:
                location, folder = self._call("AddSMS", message)
                return int(folder), int(location)
            except gammu.ERR_FULL:
                if attempt == 0:
                    self.prune_records(keep=self.config.keep_records // 2)  # then try once more
            except LINK_ERRORS:
                raise
            except gammu.GSMError as exc:
                log.warning("gsm: the modem keeps no record of delivery %s (%s)", record.delivery_id, exc)
                return None
        log.warning("gsm: the modem's memory is full; delivery %s goes without a record", record.delivery_id)
        return None

    def _delete_record(self, place: Place | None) -> None:
        if place is None:
            return
        try:
            self._call("DeleteSMS", Folder=place[0], Location=place[1])
        except gammu.GSMError as exc:
            log.warning("gsm: could not delete a send record: %s", gammu_error(exc))

    def _messages(self) -> list[dict[str, Any]]:
        """Every message in the modem's memory (each part on its own)."""
        found: list[dict[str, Any]] = []
        location: int | None = None
        while True:
            try:
                if location is None:
                    batch = self._call("GetNextSMS", Start=True, Folder=0)
                else:
                    batch = self._call("GetNextSMS", Location=location, Folder=0)
            except gammu.ERR_EMPTY:
                return found
            found.extend(batch)
            location = int(batch[0]["Location"])

    @staticmethod
    def records(messages: list[dict[str, Any]]) -> dict[int, tuple[Place, SendRecord]]:
        """The send records among ``messages``, by delivery id: (where, record)."""
        out: dict[int, tuple[Place, SendRecord]] = {}
        for message in messages:
            match = _RECORD.match(str(message.get("Text") or ""))
            if match is None or message.get("Type") != "Submit":
                continue
            refs = [int(r) for r in (match.group(2) or "").split(",") if r]
            sent = message.get("State") == "Sent"
            delivery_id = int(match.group(1))
            if delivery_id in out and out[delivery_id][1].sent and not sent:
                continue  # a crash between marking sent and deleting the first record: sent wins
            out[delivery_id] = (place_of(message), SendRecord(delivery_id, sent, refs))
        return out

    def record_of(self, delivery_id: int) -> SendRecord | None:
        found = self.records(self._messages()).get(delivery_id)
        return found[1] if found else None

    def prune_records(self, messages: list[dict[str, Any]] | None = None, keep: int | None = None) -> None:
        """Keep the records of the newest ``keep_records`` sends (a SIM holds a few dozen messages in
        all), and drop the unsent twin of a record marked sent."""
        keep = self.config.keep_records if keep is None else keep
        messages = self._messages() if messages is None else messages
        records = self.records(messages)
        newest = sorted(records)[-keep:] if keep else []
        for message in messages:
            match = _RECORD.match(str(message.get("Text") or ""))
            if match is None or message.get("Type") != "Submit":
                continue
            delivery_id, place = int(match.group(1)), place_of(message)
            if delivery_id not in newest or records[delivery_id][0] != place:
                self._delete_record(place)

    # -- incoming -----------------------------------------------------------------------------------
    def read_incoming(self) -> list[Incoming]:
        """Replies and delivery reports waiting in the modem, left there until ``forget`` (so one the
        station could not handle is read again). Old send records are dropped in the same pass
        (listing a modem's memory is its slowest command)."""
        everything = self._messages()
        self.prune_records(everything)
        messages = [m for m in everything if m.get("Type") in ("Deliver", "Status_Report")]
        out: list[Incoming] = []
        for report in (m for m in messages if m["Type"] == "Status_Report"):
            out.append(
                Incoming(
                    "report",
                    str(report.get("Number") or ""),
                    reference=int(report.get("MessageReference", -1)),
                    status=int(report.get("DeliveryStatus", 0)),
                    places=(place_of(report),),
                )
            )
        replies = [[m] for m in messages if m["Type"] == "Deliver"]
        for linked in gammu.LinkSMS(replies) if replies else []:
            decoded = gammu.DecodeSMS(linked)
            if decoded is not None and decoded.get("Entries"):
                text = "".join(str(e.get("Buffer") or "") for e in decoded["Entries"])
            else:
                text = "".join(str(part.get("Text") or "") for part in linked)
            number = str(linked[0].get("Number") or "")
            out.append(Incoming("sms", number, text=text, places=tuple(place_of(m) for m in linked)))
        return out

    def forget(self, places: list[Place]) -> None:
        """Delete handled replies and reports from the modem."""
        for place in places:
            self._delete_record(place)

    def send_plain(self, number: str, body: str) -> None:
        """A reply to a ranger (best effort, no record): 'Alert 3F acknowledged'."""
        for part in encode(body, number, self.config.smsc, report=False):
            self._call("SendSMS", part)
