#!/usr/bin/env python3
"""Refresh data/popular/ from the MISP warning lists, as packaged on PyPI.

The lists come from https://github.com/MISP/misp-warninglists (CC0 1.0), through the
`pymispwarninglists` wheel, which carries their JSON. Each list is written as a text file,
one value per line, with a header saying what it is, where it came from and when.

    scripts/refresh-popular.py            # newest pymispwarninglists
    scripts/refresh-popular.py 1.7.0      # a given version

Review the diff before committing: a value that leaves the list is exportable again.
"""

import datetime
import ipaddress
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

# file written -> (MISP list, what the service calls it in a result's detail)
LISTS = {
    "domains.txt": ["tranco10k"],
    "resolvers.txt": ["public-dns-v4", "public-dns-v6"],
}
OUT = pathlib.Path(__file__).resolve().parent.parent / "data" / "popular"


def wheel(version, into):
    spec = f"pymispwarninglists=={version}" if version else "pymispwarninglists"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", into, spec],
        check=True,
    )
    return next(pathlib.Path(into).glob("pymispwarninglists-*.whl"))


def read_list(archive, name):
    path = f"pymispwarninglists/data/misp-warninglists/lists/{name}/list.json"
    return json.loads(archive.read(path))


def normalise(kind, value):
    value = value.strip().lower().rstrip(".")
    if kind == "cidr":
        return str(ipaddress.ip_address(value))  # single addresses only; fails loudly otherwise
    return value


def main():
    version = sys.argv[1] if len(sys.argv) > 1 else None
    today = datetime.date.today().isoformat()
    with tempfile.TemporaryDirectory() as tmp:
        path = wheel(version, tmp)
        package = path.name.split("-")[1]
        with zipfile.ZipFile(path) as archive:
            OUT.mkdir(parents=True, exist_ok=True)
            for file, names in LISTS.items():
                header, values = [], set()
                for name in names:
                    data = read_list(archive, name)
                    header.append(f"# list: {name} {data['version']}: {data['name']}")
                    values.update(normalise(data["type"], v) for v in data["list"])
                header += [
                    "# source: "
                    + ", ".join(f"https://github.com/MISP/misp-warninglists/tree/main/lists/{n}" for n in names),
                    f"# via: pymispwarninglists {package} (PyPI)",
                    "# licence: CC0 1.0 Universal (the MISP warning lists)",
                    f"# fetched: {today} by scripts/refresh-popular.py",
                ]
                text = "\n".join(header + sorted(values)) + "\n"
                (OUT / file).write_text(text)
                print(f"{file}: {len(values)} values from {', '.join(names)}")


if __name__ == "__main__":
    main()
