"""The Yaguar field agent (runs on a Raspberry Pi under systemd).

triggers (PIR, timelapse, IR illuminator) -> capture (camera, burst, pre-trigger buffer) -> spool
(crash-safe on-disk queue) -> publisher (MQTT v5 to the station, deleted on its Ack) ; health
(heartbeat, pushed config) ; service (wiring, sd_notify) ; cli (``yaguar-agent``).
"""
