"""One real agent (spool + publisher) in its own process, so a test can SIGKILL it or run it in another
network namespace. It captures ``--bursts`` bursts of real JPEGs, appends ``seq sha256`` of each frame
the spool accepted to ``--log`` (flushed, after the spool's fsync), then waits for the spool to drain.

    python -m tests.support.agent_child --device cam-01 --host 127.0.0.1 --port 1883 \
        --spool DIR --log FILE --images /work/shared/data/images --bursts 20
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tests.support.field import SpoolAgent
from tests.support.small_jpegs import small_real_jpegs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--ack-timeout", type=float, default=5.0)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the spool to drain")
    args = parser.parse_args(argv)
    jpegs = small_real_jpegs(args.images, count=12, width=args.width)
    agent = SpoolAgent(
        args.device,
        args.host,
        args.port,
        args.spool,
        jpegs,
        burst_size=3,
        ack_timeout_s=args.ack_timeout,
        window=4,
        fsync=True,
    ).start()
    done_file = args.log.with_suffix(".captured")
    already = int(done_file.read_text()) if done_file.exists() else 0
    with args.log.open("a") as log:
        for burst in range(already, args.bursts):
            before = set(agent.captured)
            agent.capture_burst()
            for seq in sorted(set(agent.captured) - before):
                log.write(f"{seq} {agent.captured[seq]}\n")
            log.flush()
            os.fsync(log.fileno())
            done_file.write_text(str(burst + 1))
            time.sleep(args.interval)
    deadline = time.monotonic() + args.wait
    while agent.pending and time.monotonic() < deadline:
        time.sleep(0.1)
    agent.close()
    return 0 if agent.pending == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
