"""The same job done the way a script would: the darktrace-sdk package's intelfeed call.

Reads a ThreatQ list page (the "data" form), keeps the FQDN and IP Address indicators whose
status is not Whitelisted or Expired (lower-cased, without a trailing dot, each value once),
and adds them with `intelfeed.update(add_list=..., source=...)` in calls of BATCH entries,
one after another, as the synchronous SDK does. Prints the seconds it took and the entries
sent. Usage: sdk_peer.py URL PUBLIC PRIVATE BODY_FILE BATCH
"""

import json
import sys
import time

from darktrace import DarktraceClient


def main():
    url, public, private, path, batch = sys.argv[1:6]
    batch = int(batch)
    started = time.monotonic()
    with open(path, "rb") as f:
        page = json.load(f)
    excluded, values, seen = set(), [], set()
    for item in page["data"]:
        kind = item.get("type")
        kind = kind.get("name") if isinstance(kind, dict) else kind
        status = item.get("status")
        status = status.get("name") if isinstance(status, dict) else status
        value = str(item.get("value", "")).strip().lower().rstrip(".")
        if status in ("Whitelisted", "Expired"):
            excluded.add(value)
            continue
        if kind in ("FQDN", "IP Address") and value and value not in seen:
            seen.add(value)
            values.append(value)
    values = [v for v in values if v not in excluded]
    client = DarktraceClient(host=url, public_token=public, private_token=private)
    for i in range(0, len(values), batch):
        answer = client.intelfeed.update(add_list=values[i : i + batch], source="ThreatQ")
        if answer.get("response") != "SUCCESS":
            raise SystemExit(f"add call failed: {answer}")
    print(f"{time.monotonic() - started:.3f} {len(values)}")


if __name__ == "__main__":
    main()
