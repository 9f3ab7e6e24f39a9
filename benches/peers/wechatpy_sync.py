#!/usr/bin/env python3
"""A follower sync written the way a wechatpy user would write it: list the
followers with `client.user.iter_followers()`, fetch them 100 at a time with
`client.user.get_batch()`, and store each batch of unionid-carrying
followers with one `UPDATE account SET oaopenid = %s WHERE unionid = %s`
batch on PostgreSQL.

`--threads 1` fetches the batches one after another; `--threads 16` fetches
them from a `concurrent.futures.ThreadPoolExecutor(16)` while the main thread
writes each batch as it arrives.

It is the peer that `cargo bench --bench sync_followers` runs against the
same simulator and database as wxnotify (see docs/performance.md). It
installs what it needs with pip when missing, and prints its time last as
`seconds=S.SSS`.

    python3 benches/peers/wechatpy_sync.py --api-base http://127.0.0.1:PORT \
        --database-url postgres://postgres@127.0.0.1:5432/DB --followers 100000 --threads 16
"""

import argparse
import importlib
import subprocess
import sys
import time

REQUIREMENTS = {"wechatpy": "wechatpy==1.8.18", "psycopg2": "psycopg2-binary==2.9.10"}

# The simulator's own credentials for the service account (SimConfig::default()
# in src/sim/mod.rs).
SIM_APPID = "wxsimoa000000001"
SIM_SECRET = "sim-oa-secret"


def ensure_installed():
    missing = []
    for module, requirement in REQUIREMENTS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(requirement)
    if missing:
        print(f"installing {' '.join(missing)}", file=sys.stderr)
        command = [sys.executable, "-m", "pip", "install", "--quiet", *missing]
        if subprocess.call(command) != 0:
            # A distribution's Python refuses pip installs unless told otherwise.
            subprocess.check_call([*command, "--break-system-packages"])
        importlib.invalidate_caches()


def make_client(api_base, appid, secret, threads):
    import requests.adapters
    from wechatpy import WeChatClient

    base = api_base.rstrip("/") + "/cgi-bin/"

    class SimulatorClient(WeChatClient):
        """WeChatClient against another API base: the endpoints follow
        API_BASE_URL, the token URL is written out in fetch_access_token."""

        API_BASE_URL = base

        def fetch_access_token(self):
            return self._fetch_access_token(
                url=base + "token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    client = SimulatorClient(appid, secret)
    # requests keeps 10 connections per host by default; a pool of 16
    # threads needs 16 or it opens and drops connections.
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(threads, 10))
    client._http.mount("http://", adapter)
    client._http.mount("https://", adapter)
    return client


def chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def store(connection, users):
    """One UPDATE batch for the followers of one batchget that have a unionid."""
    from psycopg2.extras import execute_batch

    rows = [(u["openid"], u["unionid"]) for u in users if u.get("unionid")]
    if not rows:
        return 0
    with connection.cursor() as cursor:
        execute_batch(cursor, "UPDATE account SET oaopenid = %s WHERE unionid = %s", rows, page_size=100)
    connection.commit()
    return len(rows)


def sync(client, connection, threads):
    timings = {}
    started = time.perf_counter()
    openids = list(client.user.iter_followers())
    timings["listing"] = time.perf_counter() - started
    batches = list(chunks(openids, 100))
    stored = 0
    fetch_started = time.perf_counter()
    if threads <= 1:
        for batch in batches:
            stored += store(connection, client.user.get_batch(batch))
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            for users in pool.map(client.user.get_batch, batches):
                stored += store(connection, users)
    timings["batchgets and updates"] = time.perf_counter() - fetch_started
    return len(openids), len(batches), stored, timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api-base", required=True, help="the simulator, e.g. http://127.0.0.1:8001")
    parser.add_argument("--database-url", required=True, help="postgres://user@host:port/database")
    parser.add_argument("--followers", type=int, required=True, help="followers the simulator lists (checked)")
    parser.add_argument("--threads", type=int, default=1, help="1: sequential; N: a pool of N threads for the batchgets")
    parser.add_argument("--appid", default=SIM_APPID)
    parser.add_argument("--secret", default=SIM_SECRET)
    args = parser.parse_args()

    ensure_installed()
    import psycopg2

    connection = psycopg2.connect(args.database_url)
    client = make_client(args.api_base, args.appid, args.secret, args.threads)
    started = time.perf_counter()
    listed, batches, stored, timings = sync(client, connection, args.threads)
    elapsed = time.perf_counter() - started
    connection.close()
    if listed != args.followers:
        sys.exit(f"the simulator listed {listed} followers, not {args.followers}")
    mode = "sequential" if args.threads <= 1 else f"{args.threads}-thread pool"
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())
    print(f"wechatpy {mode}: {listed} followers, {batches} batchgets, {stored} unionid updates in {elapsed:.2f} s ({stages})")
    print(f"seconds={elapsed:.3f}")


if __name__ == "__main__":
    main()
