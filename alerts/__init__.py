"""Alerts: rules per species, a durable outbox, SMS through Twilio, acknowledgement and escalation.

``config`` the ``[alerts]`` section; ``rules`` which events match, quiet hours, acknowledgement codes;
``outbox`` the hook the pipeline calls inside an event's transaction (alert, flood control);
``deliveries`` one message per recipient and channel, the hourly cap; ``sender`` the loop that delivers,
retries, settles 'unknown' sends and escalates; ``channels`` Twilio SMS, webhook, log; ``messages`` and
``segments`` the bodies and their SMS cost; ``web`` Twilio callbacks, replies and the API. The station
starts it (``yaguar.server.alerts_component``) and adds ``yaguar-station alerts ...``
(``yaguar.server.alerts_cli``); nothing here imports the station.
"""
