"""The station's REST API (``/api/v1``)."""
