"""Per-op pieces of the OpenCL compiler: static shape inference (``shapes``) and lowering to
kernel launches (``conv``, ``elementwise``, ``layout``, ``misc``)."""
