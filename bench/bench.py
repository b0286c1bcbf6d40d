#!/usr/bin/env python3
"""Roster's load benchmark: the real `roster serve` (one core) behind the SCIM facade and the gRPC
hop, driven by wrk from the other core, on SQLite (a fresh file) or PostgreSQL (a fresh database,
`--backend postgres`; the PostgreSQL server itself is not pinned).

    python3 bench/bench.py [--backend sqlite|postgres] [--users 100000] [--duration 10] [--connections 32]

Needs a release build (`cargo build --release`) and wrk (`apt-get install wrk`). Prints one line
per scenario: requests/s and latency, the import rate with its first and last page times, the
one-member group PATCH rate at 1 000 and 50 000 members, and the resident memory.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")


class Scim:
    """A keep-alive SCIM client for set-up and for the sequential import measurement."""

    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.token = token

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/scim+json"
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {raw[:300]!r}")
        return json.loads(raw) if raw else None


def wrk(script, port, env, duration, connections, args=()):
    cmd = ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           "-s", os.path.join(BENCH, script), f"http://127.0.0.1:{port}", "--", *args]
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, int(errors.group(1)) if errors else 0


def report(name, result):
    rps, p50, p99, errors = result
    print(f"{name:<44} {rps:>10.0f} req/s   p50 {p50:>8}  p99 {p99:>8}  non-2xx {errors}", flush=True)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000, help="users in the directory (default 100000)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk scenario (default 10)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "roster"))
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432",
                    help="the PostgreSQL server for --backend postgres (a database roster_bench is made anew)")
    ap.add_argument("--pool-size", type=int, help="roster's --pool-size (default: roster's own)")
    opts = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is required: apt-get install wrk")
    if not os.path.exists(opts.binary):
        sys.exit(f"{opts.binary} is missing: cargo build --release")

    work = tempfile.mkdtemp(prefix="roster-bench-")
    port, grpc_port = 18080, 15051
    if opts.backend == "postgres":
        server_url = opts.postgres.rstrip("/")
        for sql in ("DROP DATABASE IF EXISTS roster_bench WITH (FORCE)", "CREATE DATABASE roster_bench"):
            subprocess.run(["psql", "-q", f"{server_url}/postgres", "-c", sql], check=True)
        database_url = f"{server_url}/roster_bench"
    else:
        database_url = f"sqlite://{work}/bench.db"
    extra = ["--pool-size", str(opts.pool_size)] if opts.pool_size else []
    server = subprocess.Popen(
        ["taskset", "-c", "0", opts.binary, "serve", "--database-url", database_url,
         "--scim-addr", f"127.0.0.1:{port}", "--grpc-addr", f"127.0.0.1:{grpc_port}", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "ROSTER_LOG": "warn"})
    token = None
    for line in server.stdout:
        m = re.search(r"SCIM token:\s+(\S+)", line)
        if m:
            token = m.group(1)
            break
    if not token:
        sys.exit("roster serve printed no SCIM token")
    env = {"T": token}
    try:
        print(f"roster serve on core 0 ({opts.backend}), wrk on core 1, {opts.connections} connections, "
              f"{opts.duration}s per scenario", flush=True)
        # Creates: wrk creates users until the directory holds --users of them.
        report("POST /Users (create)", wrk("create.lua", port, env, opts.duration, opts.connections, ["c"]))
        scim = Scim(port, token)
        total = scim.call("GET", "/scim/v2/Users?count=0")["totalResults"]
        seed = 0
        while total < opts.users:
            result = wrk("create.lua", port, env, 5, opts.connections, [f"s{seed}"])
            seed += 1
            report(f"  POST /Users (create) from {total} users", result)
            total = scim.call("GET", "/scim/v2/Users?count=0")["totalResults"]
        print(f"directory: {total} users; resident memory {rss_mib(server.pid):.1f} MiB", flush=True)

        # Ids for the read and PATCH scenarios: a spread sample of the directory.
        ids_path = os.path.join(work, "ids.txt")
        sample = []
        start = 1
        while start <= total and len(sample) < 2000:
            page = scim.call("GET", f"/scim/v2/Users?startIndex={start}&count=10")
            sample += [(u["id"], u["userName"]) for u in page["Resources"]]
            start += max(total // 200, 10)
        with open(ids_path, "w") as f:
            for i, n in sample:
                f.write(f"{i} {n}\n")
        ids_env = {**env, "IDS": ids_path}
        report("GET /Users/{id}", wrk("ids.lua", port, {**ids_env, "MODE": "get"}, opts.duration, opts.connections))
        report('GET /Users?filter=userName eq "..."',
               wrk("ids.lua", port, {**ids_env, "MODE": "filter"}, opts.duration, opts.connections))
        report("PATCH /Users/{id} (active)",
               wrk("ids.lua", port, {**ids_env, "MODE": "patch"}, opts.duration, opts.connections))

        # Import: Okta's sequential paging, count=100, through the whole directory.
        times = []
        t0 = time.perf_counter()
        seen = 0
        start = 1
        while True:
            p0 = time.perf_counter()
            page = scim.call("GET", f"/scim/v2/Users?startIndex={start}&count=100")
            times.append(time.perf_counter() - p0)
            n = len(page["Resources"])
            seen += n
            start += n
            if n == 0 or start > page["totalResults"]:
                break
        elapsed = time.perf_counter() - t0
        first = sum(times[:10]) / len(times[:10]) * 1000
        last = sum(times[-10:]) / len(times[-10:]) * 1000
        print(f"{'import (startIndex paging, count=100)':<44} {seen / elapsed:>10.0f} users/s "
              f"first pages {first:.2f} ms, last pages {last:.2f} ms", flush=True)

        # One-member PATCH on a group of 1 000 and of 50 000 members.
        member_ids = [line.split()[0] for line in open(ids_path)][:200]
        all_ids = []
        start = 1
        while len(all_ids) < 50_200 and start <= total:
            page = scim.call("GET", f"/scim/v2/Users?startIndex={start}&count=1000&attributes=id")
            all_ids += [u["id"] for u in page["Resources"]]
            start += 1000
        outsiders = set(member_ids)
        pool = [i for i in all_ids if i not in outsiders]
        for size in (1_000, 50_000):
            if len(pool) < size:
                print(f"skipping the {size}-member group: only {len(pool)} users", flush=True)
                continue
            g = scim.call("POST", "/scim/v2/Groups",
                          {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                           "displayName": f"bench-{size}", "members": []})
            for i in range(0, size, 1000):
                scim.call("PATCH", f"/scim/v2/Groups/{g['id']}",
                          {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                           "Operations": [{"op": "add", "path": "members",
                                           "value": [{"value": v} for v in pool[i:i + 1000]]}]})
            report(f"PATCH /Groups/{{id}} one member ({size} members)",
                   wrk("member.lua", port, {**ids_env, "GROUP": g["id"]}, opts.duration, opts.connections))
        print(f"resident memory after the run: {rss_mib(server.pid):.1f} MiB", flush=True)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
