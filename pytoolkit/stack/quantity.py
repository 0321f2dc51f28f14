"""Kubernetes resource quantities: CPU (`500m`, `0.5`, `1`) and sizes (`256Mi`, `1Gi`, `128M`, `268435456`).

Only the forms people write in a stack file are accepted; the exponent forms (`1e3`) and milli-bytes
(`256m`, almost always meant as megabytes) are refused rather than guessed.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_CPU = re.compile(r"^(?P<milli>[0-9]+)m$|^(?P<cores>[0-9]+(\.[0-9]{1,3})?)$")
_SIZE = re.compile(r"^(?P<number>[0-9]+(\.[0-9]+)?)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_FACTORS = {
    None: 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}

CPU_EXPECT = "a Kubernetes CPU quantity such as 500m, 0.5 or 1 (more than zero)"
SIZE_EXPECT = "a Kubernetes size such as 256Mi, 1Gi, 128M or 268435456 (more than zero; 'm' would mean milli-bytes)"


def cpu_millicores(text: str) -> int:
    """Millicores of a CPU quantity: `500m` → 500, `0.5` → 500, `2` → 2000.

    Raises ValueError (with CPU_EXPECT as its text) for a malformed or zero quantity.
    """
    found = _CPU.match(text)
    if not found:
        raise ValueError(CPU_EXPECT)
    if found.group("milli") is not None:
        value = int(found.group("milli"))
    else:
        value = int(Decimal(found.group("cores")) * 1000)
    if value <= 0:
        raise ValueError(CPU_EXPECT)
    return value


def size_bytes(text: str) -> int:
    """Bytes of a size quantity: `256Mi` → 268435456, `128M` → 128000000, `1.5Gi` → 1610612736.

    A fractional result is rounded up to a whole byte (as Kubernetes does). Raises ValueError (with
    SIZE_EXPECT as its text) for a malformed or zero size.
    """
    found = _SIZE.match(text)
    if not found:
        raise ValueError(SIZE_EXPECT)
    value = math.ceil(Decimal(found.group("number")) * _FACTORS[found.group("suffix")])
    if value <= 0:
        raise ValueError(SIZE_EXPECT)
    return value
