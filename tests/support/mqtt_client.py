"""A plain paho v5 client for tests: publishes anything (also what the contract forbids) and records
what it receives."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.broker import Broker


class MqttTestClient:
    def __init__(
        self, broker: Broker, client_id: str, username: str | None = None, password: str | None = None
    ):
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if username:
            self.client.username_pw_set(username, password)
        self.received: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self.client.on_message = self._on_message
        self.connect_reason: object = None
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.broker = broker

    def _on_connect(self, _c, _u, _f, reason, _p) -> None:
        self.connect_reason = reason
        self._connected.set()

    def _on_message(self, _c, _u, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(message)

    def connect(self) -> MqttTestClient:
        self.client.connect(self.broker.host, self.broker.port, clean_start=True)
        self.client.loop_start()
        assert self._connected.wait(10), "test client could not connect"
        return self

    def subscribe(self, topic: str) -> None:
        result, _mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        time.sleep(0.1)

    def publish(self, topic: str, payload: bytes, properties=None, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, properties=properties, retain=retain)
        info.wait_for_publish(10)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        with self._lock:
            return list(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def mqtt_client(broker: Broker, client_id: str, **kwargs) -> Iterator[MqttTestClient]:
    client = MqttTestClient(broker, client_id, **kwargs).connect()
    try:
        yield client
    finally:
        client.close()
