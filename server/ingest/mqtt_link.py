"""The station's MQTT connection: a persistent v5 session, QoS 1, manual acknowledgements.

A received message is handed to the writer and acknowledged to the broker only after the writer
committed it (``ack``). If the station dies first, the broker still holds the message in our session
and delivers it again.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import Gauge

from yaguar.protocol import paho_speedup, topics

from ..config import MqttConfig

log = logging.getLogger(__name__)


class LinkMetrics(Protocol):
    """The gauges a link keeps (the ingest's and the clip receiver's metrics both have them)."""

    mqtt_connected: Gauge
    queue_depth: Gauge


@dataclass
class Received:
    """One message from the broker, waiting for the writer."""

    topic: str
    # A frame arrives as the bytearray it was received into; emptied once its file is written.
    payload: bytes | bytearray
    properties: Properties | None
    mid: int
    qos: int
    arrived: float = field(default_factory=time.monotonic)


class StationMqtt:
    def __init__(self, config: MqttConfig, inbox: queue.Queue[Received], metrics: LinkMetrics) -> None:
        self.config = config
        self.inbox = inbox
        self.metrics = metrics
        paho_speedup.install()  # frames of several MB arrive here: paho's receive path copies each many times
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.client.max_inflight_messages_set(config.receive_maximum)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        if config.username:
            password = config.password.get_secret_value() if config.password else None
            self.client.username_pw_set(config.username, password)
        if config.tls:
            self.client.tls_set(
                ca_certs=str(config.tls.ca_file),
                certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
                keyfile=str(config.tls.key_file) if config.tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self._answer_lock = threading.Lock()
        # our publish mid -> (mid, qos) of the message to ack after it; not the message, which holds a frame
        self._awaiting_answer: dict[int, tuple[int, int]] = {}
        self._answered_early: set[int] = set()
        self.connected = False
        self._stopping = False

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_maximum
        # connect_async + loop_start: the station starts even while the broker is down, and keeps retrying.
        self.client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.connected

    # --- link to agents (acks, config, commands)
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain)

    def ack(self, item: Received) -> None:
        """Acknowledge a message to the broker: it will not be delivered again."""
        self._ack(item.mid, item.qos)

    def _ack(self, mid: int, qos: int) -> None:
        if qos > 0:
            self.client.ack(mid, qos)

    def answer_then_ack(self, topic: str, answer: bytes, item: Received) -> None:
        """Publish the agent's answer, and acknowledge ``item`` to the broker only once the broker holds
        the answer. Acking first could lose the answer for good: paho queues publishes beyond the
        broker's in-flight window, and a crash then leaves a frame stored, acked and never answered."""
        info = self.client.publish(topic, answer, qos=1)
        with self._answer_lock:
            if info.mid in self._answered_early:
                self._answered_early.discard(info.mid)
            else:
                self._awaiting_answer[info.mid] = (item.mid, item.qos)
                return
        self.ack(item)

    def subscriptions(self) -> list[tuple[str, int]]:
        """Frames and heartbeats, shared between station workers; status on a plain subscription."""
        group = self.config.shared_group
        return [
            (topics.shared(topics.Kind.FRAME, group) if group else topics.wildcard(topics.Kind.FRAME), 1),
            (
                topics.shared(topics.Kind.HEARTBEAT, group)
                if group
                else topics.wildcard(topics.Kind.HEARTBEAT),
                1,
            ),
            # Status is retained, and retained messages are not sent on shared subscriptions.
            (topics.wildcard(topics.Kind.STATUS), 1),
        ]

    # --- paho callbacks (run on paho's network thread)
    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("broker refused the station's connection: %s", reason)
            return
        self.connected = True
        self.metrics.mqtt_connected.set(1)
        client.subscribe(self.subscriptions())
        log.info("connected to the broker at %s:%s", self.config.host, self.config.port)

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if self.connected and not self._stopping:
            log.warning("lost the broker connection (%s); reconnecting", reason)
        self.connected = False
        self.metrics.mqtt_connected.set(0)

    def _on_publish(
        self, _client: mqtt.Client, _userdata: object, mid: int, _reason: object, _props: object
    ) -> None:
        with self._answer_lock:
            delivery = self._awaiting_answer.pop(mid, None)
            if delivery is None:
                self._answered_early.add(mid)
                return
        self._ack(*delivery)

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        # The inbox is larger than receive_maximum, so this does not block while the broker honours our
        # Receive Maximum. Mosquitto 2.0.11 was seen sending a large queued backlog at once after a
        # session resume; then put() blocks and paho stops reading until the writer catches up:
        # backpressure, with the agents' Acks delayed but nothing lost.
        self.inbox.put(
            Received(
                topic=message.topic,
                payload=message.payload,
                properties=getattr(message, "properties", None),
                mid=message.mid,
                qos=message.qos,
            )
        )
        self.metrics.queue_depth.set(self.inbox.qsize())
