"""The tests' broker: a real Mosquitto on a free loopback port (see yaguar.server.local_broker)."""

from yaguar.server.local_broker import MOSQUITTO, Broker, free_port, wait_for_port

__all__ = ["MOSQUITTO", "Broker", "free_port", "wait_for_port"]
