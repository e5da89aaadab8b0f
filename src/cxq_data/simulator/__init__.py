"""Local provider simulator (Yahoo chart v8, Alpha Vantage, Stooq) serving an embedded sample.

Used by the tests and by ``make demo``::

    with ProviderSimulator() as sim:
        os.environ.update(sim.env())          # CXQ_YAHOO_BASE_URL, CXQ_AV_BASE_URL, CXQ_STOOQ_BASE_URL
        sim.script("yahoo", "AAPL", [Fault.http(429), OK])

Standalone: ``python -m cxq_data.simulator --port 0`` prints the ``export`` lines and serves until
interrupted. The sample dataset and its deliberate defects are described in ``sample``.
"""

from __future__ import annotations

from cxq_data.simulator.faults import OK, Fault
from cxq_data.simulator.server import ProviderSimulator, RecordedRequest

__all__ = ["OK", "Fault", "ProviderSimulator", "RecordedRequest"]
