"""Yaguar: camera traps for wildlife protection.

Subpackages: ``agent`` (Raspberry Pi field agent), ``protocol`` (wire contract), ``server`` (station),
``engine`` (inference), ``kernels`` (OpenCL C sources), ``alerts`` (rules, outbox, SMS).
"""

__version__ = "0.1.0"
