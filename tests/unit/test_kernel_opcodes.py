"""The elementwise op codes have one source, kernels/opcodes.py: the kernels name them, never number them."""

from __future__ import annotations

import re

from yaguar import kernels
from yaguar.kernels import opcodes

NAMED = re.compile(r"\b(?:ACT|OP)_[A-Z0-9_]+\b")
NUMBERED = re.compile(r"\b(?:ACT|OP)\s*==\s*\d")


def sources() -> dict[str, str]:
    return {name: kernels.raw_source(name) for name in [kernels.COMMON, *kernels.names()]}


def test_every_code_a_kernel_names_comes_from_the_table() -> None:
    table = opcodes.defines()
    for name, text in sources().items():
        unknown = set(NAMED.findall(text)) - set(table)
        assert not unknown, f"{name}.cl names codes the table does not have: {unknown}"
        assert not NUMBERED.search(text), f"{name}.cl compares an op code with a bare number"
        assert not re.search(r"#define\s+(?:ACT|OP)_", text), f"{name}.cl defines a code of its own"


def test_the_codes_do_not_collide() -> None:
    for table in (opcodes.ACTIVATIONS, opcodes.BINARY, opcodes.UNARY):
        assert len(set(table.values())) == len(table)
    # a unary kernel's OP is either an activation or a unary op: the two must never share a code
    assert not set(opcodes.ACTIVATIONS.values()) & set(opcodes.UNARY.values())
    assert opcodes.defines()["ACT_LEAKYRELU"] == opcodes.ACTIVATIONS["LeakyRelu"]
    assert opcodes.defines()["OP_DEQUANTIZELINEAR"] == opcodes.UNARY["DequantizeLinear"]
