#!/usr/bin/env python3
"""Measures merge latency against running registries, for bench/merge-latency.sh.

On each registry it signs in as admin and creates an editor and a reviewer. Then, for each
merge, it reads a KPI's latest record, proposes a summary change, approves it and merges
it, timing only the merge request. Registries take turns merge by merge, so that load from
other processes on the machine falls on all of them alike. KPIs are taken in catalog
order, cycling when there are fewer KPIs than merges. Prints one JSON object that maps
each registry's name to its latencies in milliseconds and their summary.
"""

import argparse
import http.client
import json
import math
import statistics
import sys
import time
import urllib.parse

PASSWORD = "bench password 1234"


class Client:
    """One keep-alive HTTP/1.1 connection to a registry."""

    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)

    def request(self, method, path, token=None, body=None, expected=(200,)):
        headers = {}
        payload = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body).encode()
        self.connection.request(method, path, body=payload, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status not in expected:
            raise SystemExit(f"error: {method} {path} returned {response.status}: {data[:500]!r}")
        return json.loads(data) if data else None


class Registry:
    """A registry under test: its connection, accounts and KPIs."""

    def __init__(self, name, base, admin_password):
        self.name = name
        self.client = Client(base)
        admin = self.sign_in("admin", admin_password)
        self.tokens = {}
        for username, role in [("bench_editor", "editor"), ("bench_reviewer", "reviewer")]:
            account = {"username": username, "password": PASSWORD, "role": role}
            # The server rejects an account left by an earlier run on the same data
            # directory with 422. Any other validation failure makes the sign-in fail.
            self.client.request("POST", "/api/accounts", admin, account, expected=(201, 422))
            self.tokens[role] = self.sign_in(username, PASSWORD)
        index = self.client.request("GET", "/api/ontology/index.json")
        self.kpis = [kpi["id"] for domain in index["domains"] for kpi in domain["kpis"] if kpi["status"] == "active"]
        self.latencies = []

    def sign_in(self, username, password):
        body = {"username": username, "password": password}
        return self.client.request("POST", "/api/auth/token", body=body)["token"]

    def merge_once(self, n):
        """Proposes and approves a change to the n-th KPI, then returns the merge's time in ms."""
        kpi_id = self.kpis[n % len(self.kpis)]
        record = self.client.request("GET", kpi_path(kpi_id))
        record["summary"] = f"{record['summary']} Benchmark revision {n}."
        request = {
            "kpi_id": kpi_id,
            "base_version": record["version"],
            "record": record,
            "title": f"Benchmark revision {n}",
            "rationale": "Merge latency benchmark.",
            "bump": None,
        }
        proposal = self.client.request("POST", "/api/proposals", self.tokens["editor"], request, expected=(201,))
        reviews = f"/api/proposals/{proposal['id']}/reviews"
        self.client.request("POST", reviews, self.tokens["reviewer"], {"verdict": "approve"}, expected=(201,))

        before = time.perf_counter()
        self.client.request("POST", f"/api/proposals/{proposal['id']}/merge", self.tokens["reviewer"])
        return (time.perf_counter() - before) * 1000

    def summary(self):
        latencies = self.latencies
        return {
            "kpis": len(self.kpis),
            "merges": len(latencies),
            "median_ms": statistics.median(latencies),
            "p90_ms": percentile(latencies, 0.9),
            "mean_ms": statistics.fmean(latencies),
            "min_ms": min(latencies),
            "max_ms": max(latencies),
            "latencies_ms": latencies,
        }


def percentile(values, fraction):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * fraction))
    return ordered[rank - 1]


def kpi_path(kpi_id):
    domain, key = kpi_id.split(".", 1)
    return f"/api/ontology/{domain}/{key}.json"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--registry",
        action="append",
        required=True,
        metavar="NAME=URL",
        help="a registry to measure, such as starter=http://127.0.0.1:8080; repeat for each",
    )
    parser.add_argument("--admin-password", required=True)
    parser.add_argument("--merges", type=int, required=True, help="number of timed merges per registry")
    parser.add_argument("--warmup", type=int, default=5, help="number of untimed merges per registry first")
    args = parser.parse_args()

    registries = []
    for spec in args.registry:
        name, _, base = spec.partition("=")
        if not name or not base:
            parser.error(f"--registry takes NAME=URL, got {spec!r}")
        registries.append(Registry(name, base, args.admin_password))

    for n in range(args.warmup + args.merges):
        for registry in registries:
            elapsed_ms = registry.merge_once(n)
            if n >= args.warmup:
                registry.latencies.append(elapsed_ms)

    json.dump({registry.name: registry.summary() for registry in registries}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
