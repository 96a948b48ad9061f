#!/usr/bin/env python3
"""Writes numbered records through Python `logging` into a file with a RotatingFileHandler, as a model server
does: INFO, WARNING every 10th, and every 100th an ERROR logged with `logger.exception` (message plus
traceback). The file rotates every MAX_BYTES; rotated files are kept (app.log.1, app.log.2, ...).

usage: filelog_writer.py PATH COUNT RATE [MAX_BYTES]
Record n's message is `msg <n>`. RATE is records per second (0: as fast as possible). Prints COUNT at the end.
"""
import logging
import logging.handlers
import sys
import time


def main():
    path, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    max_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 200_000
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=100_000)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    log = logging.getLogger("model.server")
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    start = time.monotonic()
    for n in range(count):
        if n % 100 == 99:
            try:
                raise ValueError(f"bad input {n}")
            except ValueError:
                log.exception("msg %d", n)
        elif n % 10 == 9:
            log.warning("msg %d", n)
        else:
            log.info("msg %d", n)
        if rate > 0 and n % 50 == 49:
            ahead = (n + 1) / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    handler.close()
    print(count)


if __name__ == "__main__":
    main()
