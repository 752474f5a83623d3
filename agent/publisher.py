"""Sends the spool's frames to the station over MQTT v5 and deletes each one on the station's ``Ack``.

Usage (the agent's service, and ``yaguar-sim`` driving N simulated agents through this same code)::

    spool = Spool("/var/lib/yaguar-agent/spool")
    publisher = Publisher(spool, "127.0.0.1:1883", "cam-01")   # or an MqttConfig (TLS, auth...)
    publisher.start()        # connects in the background, reconnects with backoff and jitter
    spool.put(jpeg, device="cam-01", capture_id="e1.0", event_id="e1", burst_index=0, burst_size=1,
              captured_at=datetime.now().astimezone(), trigger="pir")   # seq, size, sha256 filled in
    publisher.wait_drained(30)   # True once the station acknowledged everything
    publisher.stop()

What it promises (``protocol/SPEC.md``):

- QoS 1, frame metadata in v5 user properties, the retained ``status`` topic as Last Will (``offline``)
  and ``online`` after each connect.
- A bounded in-flight window: at most ``inflight_window`` frames published and not yet acknowledged by
  the station. A broker PUBACK only means the broker has it; the frame leaves the spool on ``Ack``
  (``stored``/``duplicate``), goes to quarantine on ``rejected``, and is sent again when no ``Ack``
  arrives within ``ack_timeout_s`` or the connection drops (the station is idempotent on seq).
- Each connection is a fresh paho client with a clean session: the spool, not paho's memory, is the
  one list of what still has to go, so nothing is sent twice by two different queues.
- Keepalive long enough for the largest frame on the slowest uplink (``MqttConfig.effective_keepalive``).
- A frame larger than the station's limit, or than the broker's Maximum Packet Size, or refused by the
  broker as too large, is quarantined and logged, never marked sent.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from yaguar.protocol import paho_speedup, topics
from yaguar.protocol.clip import ClipChunkMeta
from yaguar.protocol.clip import to_properties as clip_properties
from yaguar.protocol.errors import ProtocolError
from yaguar.protocol.frame import to_properties
from yaguar.protocol.messages import Ack, Command, Message, Status
from yaguar.protocol.topics import Kind
from yaguar.protocol.validate import parse_json_message

from .cameras.base import local_now
from .config import MqttConfig
from .inflight import STRIKES_ALONE, STRIKES_QUARANTINE, InFlightWindow
from .metrics import AgentMetrics
from .spool import Spool, SpoolError

log = logging.getLogger(__name__)

AGENT_VERSION = "0.1.0"
PROPERTY_ALLOWANCE = 4096  # bytes of topic and properties on top of a frame's payload
_PACKET_TOO_LARGE = 0x95
_PAYLOAD_FORMAT_INVALID = 0x99


_DISCONNECTED = -1  # marker in the PUBACK queue: a connection ended here
_KEEPALIVE_TIMEOUT = 0x8D


def backoff(delay: float, ceiling: float, rng: random.Random | None = None) -> tuple[float, float]:
    """(pause now, delay for next time): exponential backoff with "equal jitter", so a hundred cameras
    that lost the same access point do not come back in lockstep, and none waits more than ``ceiling``."""
    pause = (rng or random).uniform(delay / 2, delay)
    return pause, min(ceiling, delay * 2)


def parse_address(address: str) -> MqttConfig:
    """``host:port`` (or just ``host``) as an MqttConfig with defaults for everything else."""
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "1883")
    return MqttConfig(host=host or address, port=int(port or 1883))


class Publisher:
    """The agent's MQTT side: frames out of the spool, acks/config/commands in, status and heartbeats.

    ``on_config(payload)`` gets the raw retained config message, ``on_command(command)`` a validated
    ``Command``; both run on paho's network thread and must return quickly.
    """

    def __init__(
        self,
        spool: Spool,
        mqtt_config: MqttConfig | str,
        device_id: str,
        *,
        metrics: AgentMetrics | None = None,
        on_config: Callable[[bytes], None] | None = None,
        on_command: Callable[[Command], None] | None = None,
    ) -> None:
        self.spool = spool
        self.config = parse_address(mqtt_config) if isinstance(mqtt_config, str) else mqtt_config
        self.device_id = topics.check_device_id(device_id)
        self.metrics = metrics or spool.metrics
        paho_speedup.install()  # paho's receive path, without its per-packet copies (tested paho only)
        self.on_config = on_config
        self.on_command = on_command
        self.agent_version = AGENT_VERSION
        self.config_version = 0
        self.config_error: str | None = None
        self.connected = threading.Event()
        self._client: mqtt.Client | None = None
        self._client_lock = threading.Lock()
        self.window = InFlightWindow(self.config.inflight_window, self.config.ack_timeout_s)
        self._server_max_packet: int | None = None
        # PUBACKs and disconnects arrive on paho's thread while it holds its own locks; the sender thread
        # handles them from this queue, after it has recorded the mid of everything it published.
        self._pubacks: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._keepalive_boost = 1  # doubled when an upload outlasted the keepalive: the uplink is slower
        self._generation = 0
        self.last_beat = time.monotonic()
        self._stop = threading.Event()
        self._disconnected = threading.Event()
        self._threads = [
            threading.Thread(target=self._connection_loop, name="mqtt-connection", daemon=True),
            threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True),
        ]
        self.topic = {kind: topics.topic(self.device_id, kind) for kind in Kind}

    # -- life cycle ----------------------------------------------------------------------------------

    def start(self) -> Publisher:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Say ``offline`` (retained), disconnect, and stop the threads. Spooled frames stay spooled."""
        self._stop.set()
        self.spool.wake()
        with self._client_lock:
            client = self._client
        if client is not None and self.connected.is_set():
            info = client.publish(
                self.topic[Kind.STATUS], self._status("offline").to_json(), qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout=min(timeout, 2.0))
            except (RuntimeError, ValueError) as exc:
                log.debug("offline status not confirmed: %s", exc)
            client.disconnect()
        self._disconnected.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Block until the station has acknowledged (or refused) every spooled frame, or ``timeout``."""
        deadline = time.monotonic() + timeout
        while self.spool.depth:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.spool.wait(min(left, 0.5), since=self.spool.version)
        return True

    def is_alive(self, max_silence_s: float = 300.0) -> bool:
        """Both threads run, and the sender has looped lately (it wakes at least twice a second)."""
        recent = time.monotonic() - self.last_beat < max_silence_s
        return recent and all(thread.is_alive() for thread in self._threads)

    @property
    def inflight(self) -> int:
        return len(self.window)

    # -- connection ----------------------------------------------------------------------------------

    def _new_client(self) -> mqtt.Client:
        cfg = self.config
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,  # our loop reconnects, with jitter
        )
        client.username_pw_set(
            cfg.username or self.device_id, cfg.password.get_secret_value() if cfg.password else None
        )
        if cfg.tls is not None:
            client.tls_set(
                ca_certs=str(cfg.tls.ca_file),
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
            )
        client.will_set(self.topic[Kind.STATUS], self._status("offline").to_json(), qos=1, retain=True)
        client.max_inflight_messages_set(cfg.inflight_window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def _connection_loop(self) -> None:
        delay = self.config.reconnect_min_s
        while not self._stop.is_set():
            self._disconnected.clear()
            started = time.monotonic()
            try:
                client = self._new_client()
            except (OSError, ValueError) as exc:  # e.g. a CA or client certificate that cannot be read
                log.error("mqtt: TLS set-up failed: %s (check [mqtt.tls] in the config)", exc)
                client = None
            try:
                if client is None:
                    raise ConnectionError("no client")
                client.connect(
                    self.config.host,
                    self.config.port,
                    keepalive=min(65535, self.config.effective_keepalive() * self._keepalive_boost),
                    clean_start=True,
                )
            except (OSError, ValueError) as exc:
                if client is not None:
                    log.info("mqtt: cannot reach %s:%d (%s)", self.config.host, self.config.port, exc)
            else:
                with self._client_lock:
                    self._client = client
                client.loop_start()
                self._disconnected.wait()
                client.loop_stop()
                with self._client_lock:
                    self._client = None
                if time.monotonic() - started > 30:
                    delay = self.config.reconnect_min_s  # it was a working connection: start over
            if self._stop.is_set():
                break
            pause, delay = backoff(delay, self.config.reconnect_max_s)
            log.info("mqtt: reconnecting in %.1f s", pause)
            self._stop.wait(pause)

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, props: Properties | None
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt: broker refused the connection: %s", reason)
            return
        self._server_max_packet = getattr(props, "MaximumPacketSize", None)
        for kind in (Kind.ACK, Kind.CONFIG, Kind.COMMAND):
            client.subscribe(self.topic[kind], qos=1)
        client.publish(self.topic[Kind.STATUS], self._status("online").to_json(), qos=1, retain=True)
        self._generation += 1
        self.metrics.connects.inc()
        self.connected.set()
        self.spool.wake()
        log.info("mqtt: connected to %s:%d as %s", self.config.host, self.config.port, self.device_id)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if self.connected.is_set():
            log.info("mqtt: disconnected (%s)", reason)
            self._pubacks.put((_DISCONNECTED, (self._generation, reason.value)))
            if reason.value == _KEEPALIVE_TIMEOUT and self.window.uploading(self._generation):
                # An upload outlasted the keepalive: the uplink is slower than configured. Double the
                # keepalive for the next connection rather than blame (and quarantine) the frame.
                if self.config.effective_keepalive() * self._keepalive_boost < 65535:
                    self._keepalive_boost *= 2
                log.warning(
                    "mqtt: keepalive ran out during an upload; the uplink is slower than "
                    "min_uplink_bytes_per_s (%d B/s); keepalive now %d s",
                    self.config.min_uplink_bytes_per_s,
                    min(65535, self.config.effective_keepalive() * self._keepalive_boost),
                )
        self.connected.clear()
        self._disconnected.set()

    # -- frames out ----------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self.last_beat = time.monotonic()
            if not self.connected.is_set():
                self.connected.wait(0.5)
                continue
            version = self.spool.version  # a change after this point cuts the wait below short
            try:
                self._handle_pubacks()
                self._expire_inflight()
                self._fill_window()
            except Exception:  # the sender must outlive any one bad frame; systemd watches the thread
                log.exception("mqtt: sending failed; trying again")
                self._stop.wait(1.0)
            self.spool.wait(0.5, since=version)

    def _fill_window(self) -> None:
        inflight = self.window.seqs()
        room = self.window.size - len(inflight)
        if room <= 0 or self.window.suspect_in_flight():
            return
        for frame in self.spool.pick(room, exclude=inflight):
            strikes = self.window.strikes(frame.seq)
            if strikes >= STRIKES_QUARANTINE:
                log.warning("mqtt: the broker closed the connection %d times on seq %d", strikes, frame.seq)
                self.spool.quarantine(frame.seq, "broker_closed_connection")
                self.window.done(frame.seq)
                continue
            if strikes >= STRIKES_ALONE and len(self.window):
                return  # a suspect goes alone, so a second drop is its own fault
            if not self._publish_frame(frame.seq) or self._stop.is_set() or strikes >= STRIKES_ALONE:
                return

    def _expire_inflight(self) -> None:
        for seq, waited in self.window.expire():
            log.info("mqtt: no ack for seq %d after %.0f s; sending it again", seq, waited)

    def _publish_frame(self, seq: int) -> bool:
        """Publish one spooled frame; False when the connection is gone (try again later)."""
        frame = self.spool.get(seq)
        if frame is None:
            return True
        try:
            payload = frame.read_payload()
        except (SpoolError, OSError) as exc:
            log.warning("mqtt: spooled frame seq %d unreadable: %s", seq, exc)
            self.spool.quarantine(seq, "unreadable_spool_file")
            return True
        limit = self.config.max_frame_bytes
        if self._server_max_packet is not None:
            limit = min(limit, self._server_max_packet - PROPERTY_ALLOWANCE)
        if len(payload) > limit:
            log.warning(
                "mqtt: frame seq %d is %d bytes, over the %d allowed; not sent", seq, len(payload), limit
            )
            self.spool.quarantine(seq, "oversize_payload")
            return True
        with self._client_lock:
            client = self._client
        if client is None or not self.connected.is_set():
            return False
        if isinstance(frame.meta, ClipChunkMeta):  # one chunk of a clip: its own topic and properties
            info = client.publish(
                self.topic[Kind.CLIP], payload, qos=1, properties=clip_properties(frame.meta)
            )
        else:
            info = client.publish(
                self.topic[Kind.FRAME], payload, qos=1, properties=to_properties(frame.meta)
            )
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.info("mqtt: publish of seq %d failed: %s", seq, mqtt.error_string(info.rc))
            return False
        self.window.sent(seq, info.mid, self._generation)
        self.metrics.publishes.inc()
        return True

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason: ReasonCode, _props: Any
    ) -> None:
        self._pubacks.put((mid, reason))
        if reason.is_failure:
            self.spool.wake()

    def _handle_pubacks(self) -> None:
        """Runs on the sender thread, which recorded each frame's mid before any PUBACK is read here."""
        while True:
            try:
                mid, reason = self._pubacks.get_nowait()
            except queue.Empty:
                return
            if mid == _DISCONNECTED:
                generation, code = reason
                # A keepalive that ran out means a slow uplink (see _on_disconnect), not a bad frame.
                self.window.connection_ended(generation, blame=code != _KEEPALIVE_TIMEOUT)
                continue
            seq = self.window.puback(mid, failed=reason.is_failure)
            if seq is None:
                continue
            if reason.value in (_PACKET_TOO_LARGE, _PAYLOAD_FORMAT_INVALID):
                name = str(reason.getName()).lower().replace(" ", "_")
                log.warning("mqtt: broker refused seq %d as %s", seq, reason)
                self.spool.quarantine(seq, f"broker_refused_{name}"[:64])
                self.window.done(seq)
            else:
                # Quota exceeded, not authorised, server busy...: the frame stays and goes again later.
                log.warning("mqtt: broker refused seq %d: %s; it stays in the spool", seq, reason)

    # -- messages in ---------------------------------------------------------------------------------

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            _, kind = topics.parse(message.topic)
            if kind is Kind.ACK:
                self._handle_ack(parse_json_message(Ack, message.topic, message.payload))
            elif kind is Kind.CONFIG:
                if self.on_config is not None:
                    self.on_config(bytes(message.payload))
            elif kind is Kind.COMMAND:
                command = parse_json_message(Command, message.topic, message.payload)
                if self.on_command is not None:
                    self.on_command(command)
        except ProtocolError as exc:
            self.metrics.bad_messages.labels(kind=message.topic.rsplit("/", 1)[-1][:16]).inc()
            log.warning("mqtt: refused a message on %s: %s", message.topic[:120], exc)
        except Exception:  # a callback bug must not kill paho's network thread
            log.exception("mqtt: handling a message on %s failed", message.topic[:120])

    def _handle_ack(self, ack: Ack) -> None:
        self.window.done(ack.seq)
        if ack.status == "rejected":
            reason = f"rejected_{ack.reason or 'unknown'}"[:64]
            if self.spool.quarantine(ack.seq, reason):
                log.warning("mqtt: station rejected seq %d (%s)", ack.seq, ack.reason)
        elif not self.spool.ack(ack.seq):
            log.debug("mqtt: ack for seq %d, which is no longer spooled", ack.seq)

    # -- JSON out ------------------------------------------------------------------------------------

    def _status(self, state: str) -> Status:
        if state == "offline":
            return Status(device=self.device_id, state="offline")
        return Status(
            device=self.device_id,
            state="online",
            at=local_now(),
            agent_version=self.agent_version,
            config_version=self.config_version,
            config_error=self.config_error,
        )

    def publish_status(self) -> bool:
        """Republish ``online`` with the current config version and error (e.g. after a refused config)."""
        return self.publish(Kind.STATUS, self._status("online"), retain=True)

    def publish(self, kind: Kind, message: Message, retain: bool = False) -> bool:
        """Publish a JSON message (heartbeat, status); False when not connected (it is not queued)."""
        with self._client_lock:
            client = self._client
        if client is None or not self.connected.is_set():
            return False
        info = client.publish(self.topic[kind], message.to_json(), qos=1, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS


__all__ = ["AGENT_VERSION", "Publisher", "parse_address"]
