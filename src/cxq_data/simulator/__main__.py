"""``python -m cxq_data.simulator [--host H] [--port P]``: run the simulator until interrupted.

Prints the ``export`` lines that point the ingestors at it (for ``eval`` in a shell or the demo).
"""

from __future__ import annotations

import argparse
import signal
import threading

from cxq_data.simulator.server import ProviderSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cxq_data.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument(
        "--av-daily-limit", type=int, default=None, help="answer the quota message after N calls"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ProviderSimulator(args.host, args.port, av_daily_limit=args.av_daily_limit) as sim:
        for name, value in sim.env().items():
            print(f"export {name}={value}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
