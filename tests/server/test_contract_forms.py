from __future__ import annotations

from tests.server.contract import Contract

CONTRACTS: list[Contract] = []
