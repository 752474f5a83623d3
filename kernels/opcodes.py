"""The elementwise op codes, in one table: the host code picks a kernel variant by code, and every
kernel build gets the names as ``-D`` defines (``defines()``), so the OpenCL sources say
``#if OP == OP_EXP`` and never a bare number.

A unary kernel's ``OP`` may be an activation code (it then applies that activation), so the unary
codes start after the activations; a test keeps the two sets apart.
"""

from __future__ import annotations

# Activations, also fused into the conv and GEMM epilogues (``ACT``, ``act1``/``act2``).
ACTIVATIONS: dict[str, int] = {
    "None": 0,
    "Relu": 1,
    "Clip": 2,
    "Sigmoid": 3,
    "SiLU": 4,
    "LeakyRelu": 5,
    "HardSigmoid": 6,
    "HardSwish": 7,
    "Tanh": 8,
}
# Binary ops with broadcasting; an activation may follow (``ACT``).
BINARY: dict[str, int] = {"Add": 0, "Sub": 1, "Mul": 2, "Div": 3, "Max": 4, "Min": 5, "Pow": 6, "PRelu": 7}
# Unary ops other than activations.
UNARY: dict[str, int] = {
    "Exp": 20,
    "Log": 21,
    "Sqrt": 22,
    "Neg": 23,
    "Abs": 24,
    "Reciprocal": 25,
    "Floor": 26,
    "Ceil": 27,
    "Erf": 28,
    "FakeQuant": 29,
    "QuantizeLinear": 30,
    "DequantizeLinear": 31,
}


def define_name(prefix: str, op: str) -> str:
    """``ACT_LEAKYRELU``, ``OP_ADD``, ``OP_DEQUANTIZELINEAR``: the name a kernel source uses."""
    return f"{prefix}_{op.upper()}"


def defines() -> dict[str, int]:
    """Every code as a ``-D`` define: ``ACT_*`` for activations, ``OP_*`` for binary and unary ops."""
    table = {define_name("ACT", op): code for op, code in ACTIVATIONS.items()}
    table |= {define_name("OP", op): code for op, code in (BINARY | UNARY).items()}
    return table
