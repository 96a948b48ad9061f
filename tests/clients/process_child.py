#!/usr/bin/env python3
"""A model server as `otlake run -- ...` captures it: logs through `logging` (default format, to stderr),
prints to stdout and stderr, and ends in one of two ways.

usage: process_child.py exit3     INFO/WARNING/ERROR records, an exception caught and logged with its
                                  traceback, a print to each stream, then exit code 3
       process_child.py sigterm   prints "ready", waits (at most 60 s) for SIGTERM, logs "bye" and exits 0
"""
import logging
import signal
import sys
import time

logging.basicConfig(level=logging.INFO)
log = logging.getLogger("model.server")


def exit3():
    log.info("model loaded")
    log.warning("cache nearly full")
    log.error("request failed")
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("inference crashed")
    print("plain stdout line", flush=True)
    print("plain stderr line", file=sys.stderr, flush=True)
    sys.exit(3)


def sigterm():
    def bye(signo, frame):
        log.info("bye")
        sys.exit(0)

    signal.signal(signal.SIGTERM, bye)
    log.info("serving")
    print("ready", flush=True)
    time.sleep(60)
    sys.exit(1)  # never told to stop


if __name__ == "__main__":
    {"exit3": exit3, "sigterm": sigterm}[sys.argv[1]]()
