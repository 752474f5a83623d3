"""Alerts: rules per species, a durable outbox, SMS through Twilio or a GSM modem, acknowledgement and
escalation.

``config`` the ``[alerts]`` section; ``rules`` which events match, quiet hours, acknowledgement codes;
``outbox`` the hook the pipeline calls inside an event's transaction (alert, flood control);
``deliveries`` one message per recipient and channel, the hourly cap; ``sender`` the loop that delivers,
retries, settles 'unknown' sends and escalates; ``failover`` which SMS channel when one is down;
``backlog`` stale low-severity messages merged after an outage; ``channels`` Twilio SMS, the GSM modem
(Gammu), webhook, log; ``modem_watch`` the modem's state, replies and delivery reports; ``inbound``
``OK <code>`` replies and delivery reports, whichever way they came; ``test_sms`` a test message;
``messages`` and ``segments`` the bodies and their SMS cost; ``web`` Twilio callbacks, replies and the
API. The station
starts it (``yaguar.server.alerts_component``) and adds ``yaguar-station alerts ...``
(``yaguar.server.alerts_cli``); nothing here imports the station.
"""
