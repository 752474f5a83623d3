"""The station's web pages: live feed, events with their boxes, cameras, alerts, rules, review, users."""
