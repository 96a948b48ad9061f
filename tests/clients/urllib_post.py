#!/usr/bin/env python3
"""POSTs a body of N zero bytes with Python's urllib (the client under the OpenTelemetry SDK's HTTP exporters'
`requests`) and prints how it ended as JSON: {"status": 413, "body": "..."} or {"error": "..."} when the
client never read an answer (a connection reset or broken pipe).

usage: urllib_post.py URL BYTES [CONTENT_TYPE] [--chunked]
  --chunked sends the body without Content-Length (Transfer-Encoding: chunked, 1 MB chunks).
"""
import json
import sys
import urllib.error
import urllib.request


def chunks(total, size=1 << 20):
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield bytes(n)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    chunked = "--chunked" in sys.argv
    url, size = args[0], int(args[1])
    content_type = args[2] if len(args) > 2 else "application/x-protobuf"
    headers = {"Content-Type": content_type}
    if chunked:
        body = chunks(size)
        headers["Transfer-Encoding"] = "chunked"
    else:
        body = bytes(size)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            print(json.dumps({"status": response.status, "body": response.read().decode("utf-8", "replace")}))
    except urllib.error.HTTPError as e:
        print(json.dumps({"status": e.code, "body": e.read().decode("utf-8", "replace")}))
    except Exception as e:  # noqa: BLE001 - the test reports whatever the client saw
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))


if __name__ == "__main__":
    main()
