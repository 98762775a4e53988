"""Lines PID 1 of an exported machine writes on its serial console, as the export tests read them."""

from __future__ import annotations

import re


def network_by_dhcp(console: str) -> str:
    """What PID 1's one network line says it took by DHCP, its timing left out, e.g. `10.0.2.15/24 via
    10.0.2.2, dns 10.0.2.3`. Fails when the line is missing or says the static fallback was used."""
    found = re.findall(r"^osv-java: network: (.*) \(DHCP in [0-9.]+ s\)\r?$", console, re.M)
    assert len(found) == 1, console
    return found[0]
