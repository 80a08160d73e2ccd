"""Copy benchmark: pgferry vs Debian's pgloader (tuned) vs the psql \\copy floor, one server, one run.

    .venv/bin/python bench/copy_vs_pgloader.py SQLITE_PATH [--runs N] [--jobs J] [--json]

(without --jobs, pgferry runs with its default: CPUs + 1, at most 8)

Starts ONE throwaway PostgreSQL cluster (pgferry.pg.cluster.throwaway_cluster: 127.0.0.1, a free
port, durability off) and, for every run, loads SQLITE_PATH into a fresh database per contender:

  pgferry   `pgferry copy SQLITE DSN --jobs J --no-verify --json` (a subprocess)
  pgloader  `pgloader LOADFILE` with `WITH include drop, create tables, create indexes,
            reset sequences, prefetch rows = 10000` (the tuned setting of issue 5)
  floor     psql only: CREATE TABLE (pgferry's --dry-run DDL), one `\\copy ... FROM 'x.csv'
            WITH (FORMAT csv)` per table, sequentially, then the dry-run's post-data statements
            (primary keys, identity restarts, indexes, FKs). The CSV files are exported with
            `sqlite3 -csv` BEFORE the clock starts, and the DDL is generated before too.

Wall time is measured around each contender's processes (process start-up included). Rows/s uses
the source row count (sum of count(*) over the SQLite user tables, the same figure for everyone).

Peak memory: every child is run under `/usr/bin/time -f %M -o FILE`, which reports the kernel's
ru_maxrss of the process as returned by wait4(): exact (no sampling), in KiB, and it covers the
process's own reaped descendants as a maximum (not a sum). pgferry runs its --jobs workers as
threads and pgloader is one SBCL process, so that maximum is the whole tool. As a cross-check a
sampler sums VmRSS over the child's process tree from /proc every 20 ms (`tree_rss_mb`: sampled,
so it can miss a short peak). For the floor the figure is the largest psql process. PostgreSQL
server memory is not counted for anyone (same server for all three).

The cluster is always stopped; every contender has a timeout (--timeout, default 600 s) after
which its process group is killed and the run recorded as `timeout`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgferry.dsn import redact
from pgferry.pg.cluster import LocalCluster, throwaway_cluster
from proctree import children, postmaster_pid, tree_cpu_s

TIME_BIN = "/usr/bin/time"
PSQL = shutil.which("psql") or "/usr/bin/psql"
SQLITE3 = shutil.which("sqlite3") or "/usr/bin/sqlite3"
PGLOADER_WITH = "include drop, create tables, create indexes, reset sequences, prefetch rows = 10000"
AFTER_MARKER = "-- after the data"
CONTENDERS = ("pgferry", "pgloader", "floor")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes and memory


@dataclass
class Proc:
    """One finished child process: exit status, wall seconds, kernel peak RSS and sampled tree RSS."""

    argv: list[str]
    returncode: int | None  # None: killed at the timeout
    seconds: float
    maxrss_kib: int | None
    tree_rss_kib: int
    stdout: str
    stderr: str
    cpu_s: float | None = None  # user + system CPU seconds of the whole child tree (GNU time %U + %S)


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Sums VmRSS over the descendants of `root` (not `root` itself: that is /usr/bin/time)."""

    def __init__(self, root: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.peak = root, interval, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            total, todo, seen = 0, children(self.root), set()
            while todo:
                pid = todo.pop()
                if pid in seen:
                    continue
                seen.add(pid)
                total += _rss_kib(pid)
                todo += children(pid)
            self.peak = max(self.peak, total)
            self.done.wait(self.interval)


def run_measured(argv: list[str], *, timeout: float, env: dict[str, str] | None = None, cwd: str | None = None) -> Proc:
    """Run argv under /usr/bin/time -f %M; wall time, exit status, peak RSS; kill the group at the timeout."""
    with tempfile.NamedTemporaryFile("r", suffix=".maxrss") as rssfile:
        full = [TIME_BIN, "-f", "%U %S %M", "-o", rssfile.name, *argv]
        started = time.perf_counter()
        child = subprocess.Popen(
            full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group, so a timeout kills the whole tree
        )
        sampler = TreeSampler(child.pid)
        sampler.start()
        try:
            out, err = child.communicate(timeout=timeout)
            code: int | None = child.returncode
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            out, err = child.communicate()
            code = None
        seconds = time.perf_counter() - started
        sampler.done.set()
        sampler.join()
        text = Path(rssfile.name).read_text().strip().splitlines()
        # GNU time writes "Command exited with non-zero status N" before the figures when N != 0.
        figures = text[-1].split() if text else []
        maxrss = cpu = None
        if len(figures) == 3 and figures[2].isdigit():
            maxrss, cpu = int(figures[2]), float(figures[0]) + float(figures[1])
    return Proc(argv, code, seconds, maxrss, sampler.peak, out, err, cpu)


def server_cpu_s(datadir: Path) -> float:
    """CPU seconds the PostgreSQL server has used so far: postmaster, its live children, its exited ones.

    Sampled before and after a contender, the difference is the server's share of that contender's work:
    a figure a busy machine does not move the way it moves wall time.
    """
    return tree_cpu_s(postmaster_pid(datadir))


# ---------------------------------------------------------------- source


def user_tables(path: Path) -> list[str]:
    """Ordinary user tables of the SQLite file: no sqlite_* tables, no virtual or shadow tables."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA main.table_list").fetchall()  # schema, name, type, ncol, wr, strict
        return sorted(r[1] for r in rows if r[0] == "main" and r[2] == "table" and not r[1].startswith("sqlite_"))
    finally:
        conn.close()


def source_counts(path: Path, tables: list[str]) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            t: conn.execute(f'SELECT count(*) FROM "{t.replace(chr(34), chr(34) * 2)}"').fetchone()[0] for t in tables
        }
    finally:
        conn.close()


def qi(name: str) -> str:
    """SQLite / PostgreSQL double-quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- target helpers


def admin(cluster: LocalCluster) -> psycopg.Connection:
    return psycopg.connect(cluster.dsn("postgres"), autocommit=True)


def fresh_database(cluster: LocalCluster, name: str) -> str:
    with admin(cluster) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute("CHECKPOINT")  # start every contender from a clean buffer pool state
    return name


def drop_database(cluster: LocalCluster, name: str) -> None:
    with admin(cluster) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def target_counts(cluster: LocalCluster, dbname: str, source_tables: list[str]) -> dict[str, Any]:
    """Rows per target table in schema public, matched to source tables case-insensitively."""
    with psycopg.connect(cluster.dsn(dbname), autocommit=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
            )
        ]
        counts = {
            n: conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(n))).fetchone()[0]
            for n in names
        }
        structure = conn.execute(
            "SELECT (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'),"
            " (SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            "   WHERE n.nspname = 'public' AND c.contype = 'f'),"
            " (SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            "   WHERE n.nspname = 'public' AND c.contype = 'p')"
        ).fetchone()
    lower = {t.lower(): t for t in source_tables}
    matched = {lower[n.lower()]: c for n, c in counts.items() if n.lower() in lower}
    return {
        "rows": sum(matched.values()),
        "per_table": matched,
        "missing_tables": sorted(t for t in source_tables if t not in matched),
        "extra_tables": sorted(n for n in counts if n.lower() not in lower),
        "extra_rows": sum(c for n, c in counts.items() if n.lower() not in lower),
        "indexes": structure[0],
        "foreign_keys": structure[1],
        "primary_keys": structure[2],
    }


# ---------------------------------------------------------------- contenders


@dataclass
class Result:
    contender: str
    run: int
    status: str  # ok | failed | timeout | skipped
    exit_code: int | None = None
    seconds: float | None = None
    rows_per_s: float | None = None
    peak_rss_mb: float | None = None
    tree_rss_mb: float | None = None
    cpu_s: float | None = None  # the contender's processes
    server_cpu_s: float | None = None  # the PostgreSQL server during the contender's run
    rows_loaded: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _mb(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


def _tail(text: str, password: str, lines: int = 8) -> str:
    clean = redact(text).replace(password, "***") if password else redact(text)
    return "\n".join(clean.strip().splitlines()[-lines:])


def _finish(result: Result, proc: Proc, source_rows: int, password: str) -> Result:
    result.exit_code = proc.returncode
    result.seconds = round(proc.seconds, 3)
    result.peak_rss_mb = _mb(proc.maxrss_kib)
    result.tree_rss_mb = _mb(proc.tree_rss_kib)
    result.cpu_s = proc.cpu_s
    if proc.returncode is None:
        result.status = "timeout"
    elif proc.returncode != 0:
        result.status = "failed"
        result.error = _tail(proc.stderr or proc.stdout, password)
    else:
        result.status = "ok"
    if result.status == "ok":
        result.rows_per_s = round(source_rows / proc.seconds)
    return result


def run_pgferry(
    cluster: LocalCluster, src: Path, dbname: str, jobs: int | None, timeout: float, source_rows: int
) -> Result:
    pgferry = str(Path(sys.executable).with_name("pgferry"))
    jobs_args = [] if jobs is None else ["--jobs", str(jobs)]
    proc = run_measured(
        [pgferry, "copy", str(src), cluster.dsn(dbname), *jobs_args, "--no-verify", "--json"], timeout=timeout
    )
    result = _finish(Result("pgferry", 0, "ok"), proc, source_rows, cluster.password)
    if result.status == "ok":
        try:
            report = json.loads(proc.stdout)
            result.detail["reported"] = {k: report.get(k) for k in ("rows", "seconds", "rows_per_s", "phases")}
        except json.JSONDecodeError:
            result.detail["stdout_tail"] = _tail(proc.stdout, cluster.password)
    return result


def pgloader_url(cluster: LocalCluster, dbname: str) -> str:
    # token_urlsafe passwords need no percent-encoding, but encode anyway in case a caller sets one.
    from urllib.parse import quote

    return f"postgresql://{cluster.superuser}:{quote(cluster.password, safe='')}@{cluster.host}:{cluster.port}/{dbname}"


def run_pgloader(
    cluster: LocalCluster, src: Path, dbname: str, timeout: float, source_rows: int, with_options: str, workdir: Path
) -> Result:
    binary = shutil.which("pgloader")
    if binary is None:
        return Result("pgloader", 0, "skipped", error="pgloader not installed (apt-get install -y pgloader failed)")
    url = pgloader_url(cluster, dbname)
    loadfile = workdir / f"{dbname}.load"
    loadfile.write_text(f"LOAD DATABASE\n  FROM sqlite://{src.resolve()}\n  INTO {url}\nWITH {with_options};\n")
    loadfile.chmod(0o600)
    rootdir = workdir / f"{dbname}.pgloader"
    try:
        proc = run_measured([binary, "--root-dir", str(rootdir), str(loadfile)], timeout=timeout)
    finally:
        loadfile.unlink(missing_ok=True)  # it holds the password
    result = _finish(Result("pgloader", 0, "ok"), proc, source_rows, cluster.password)
    result.detail["with"] = with_options
    result.detail["target"] = redact(url)
    # pgloader can exit 0 after errors in single tables, and non-zero with a partial load: look at its summary.
    combined = proc.stdout + "\n" + proc.stderr
    errors = [line for line in combined.splitlines() if re.search(r"\b(ERROR|FATAL|Heap exhausted)\b", line)]
    if errors:
        result.detail["error_lines"] = [_tail(e, cluster.password, 1)[:300] for e in errors[:10]]
    summary = [line for line in combined.splitlines() if "Total import time" in line or "Files Processed" in line]
    if summary:
        result.detail["summary_line"] = _tail(summary[-1], cluster.password, 1)
    if result.status != "ok" and not result.error:
        result.error = _tail(combined, cluster.password)
    return result


@dataclass
class FloorPlan:
    create_sql: str
    post_sql: str
    csv_files: dict[str, Path]  # source table -> csv
    columns: dict[str, list[str]]  # source table -> source columns exported (hidden/generated left out)


def prepare_floor(src: Path, tables: list[str], workdir: Path, timeout: float) -> FloorPlan:
    """Untimed: pgferry's dry-run DDL split at the post-data marker, and one CSV per table from sqlite3."""
    pgferry = str(Path(sys.executable).with_name("pgferry"))
    dry = subprocess.run([pgferry, "copy", str(src), "--dry-run"], capture_output=True, text=True, timeout=timeout)
    if dry.returncode != 0:
        raise RuntimeError(f"pgferry copy --dry-run failed: {dry.stderr.strip()[-500:]}")
    if AFTER_MARKER in dry.stdout:
        create_sql, post_sql = dry.stdout.split(AFTER_MARKER, 1)
        post_sql = post_sql.split("\n", 1)[1]  # the rest of the marker's comment line
    else:
        create_sql, post_sql = dry.stdout, ""
    # The floor runs no ANALYZE (pgferry does): the dry run lists them since 2026-12-06, dropped here so the
    # floor stays what it was when the figures below were first taken.
    post_sql = "\n".join(line for line in post_sql.splitlines() if not line.startswith("ANALYZE "))
    conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        columns = {
            t: [r[1] for r in conn.execute(f"PRAGMA table_xinfo({qi(t)})") if r[6] == 0]  # hidden=0: no generated
            for t in tables
        }
    finally:
        conn.close()
    csv_files: dict[str, Path] = {}
    for i, table in enumerate(tables):
        path = workdir / f"t{i:03d}.csv"
        select = f"SELECT {', '.join(qi(c) for c in columns[table])} FROM {qi(table)}"
        with path.open("wb") as out:
            subprocess.run([SQLITE3, "-csv", "-readonly", str(src), select], stdout=out, check=True, timeout=timeout)
        csv_files[table] = path
    return FloorPlan(create_sql, post_sql, csv_files, columns)


def _psql(cluster: LocalCluster, dbname: str, *args: str) -> list[str]:
    return [PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", cluster.host, "-p", str(cluster.port),
            "-U", cluster.superuser, "-d", dbname, *args]  # fmt: skip


def run_floor(cluster: LocalCluster, plan: FloorPlan, dbname: str, timeout: float, source_rows: int,
              workdir: Path) -> Result:  # fmt: skip
    env = {**os.environ, "PGPASSWORD": cluster.password}
    result = Result("floor", 0, "ok")
    create_file, post_file = workdir / "floor_create.sql", workdir / "floor_post.sql"
    create_file.write_text(plan.create_sql)
    post_file.write_text(plan.post_sql)
    procs: list[Proc] = []
    failures: list[str] = []
    phases: dict[str, float] = {}
    deadline = time.perf_counter() + timeout
    started = time.perf_counter()

    def step(argv: list[str]) -> Proc:
        proc = run_measured(argv, timeout=max(1.0, deadline - time.perf_counter()), env=env)
        procs.append(proc)
        return proc

    proc = step(_psql(cluster, dbname, "-f", str(create_file)))
    phases["create"] = time.perf_counter() - started
    if proc.returncode != 0:
        failures.append("CREATE TABLE: " + _tail(proc.stderr, cluster.password, 3))
    else:
        # Target names: the tables and columns pgferry's DDL created, matched case-insensitively to the source.
        mark = time.perf_counter()
        with psycopg.connect(cluster.dsn(dbname), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND a.attnum > 0"
                " AND NOT a.attisdropped AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                " ORDER BY c.oid, a.attnum"
            ).fetchall()
        target: dict[str, tuple[str, str, dict[str, str]]] = {}
        for schema, rel, att in rows:
            entry = target.setdefault(rel.lower(), (schema, rel, {}))
            entry[2][att.lower()] = att
        phases["catalog"] = time.perf_counter() - mark
        mark = time.perf_counter()
        for table, csv in plan.csv_files.items():
            if table.lower() not in target:
                failures.append(f"{table}: no target table in the dry-run DDL")
                continue
            schema, rel, cols = target[table.lower()]
            try:
                col_list = ", ".join(qi(cols[c.lower()]) for c in plan.columns[table])
            except KeyError as exc:
                failures.append(f"{table}: column {exc} not in the target table")
                continue
            command = f"\\copy {qi(schema)}.{qi(rel)} ({col_list}) FROM '{csv}' WITH (FORMAT csv)"
            proc = step(_psql(cluster, dbname, "-c", command))
            if proc.returncode != 0:
                failures.append(f"{table}: " + _tail(proc.stderr, cluster.password, 3))
            if time.perf_counter() > deadline:
                break
        phases["copy"] = time.perf_counter() - mark
        mark = time.perf_counter()
        if plan.post_sql.strip() and time.perf_counter() < deadline:
            proc = step(_psql(cluster, dbname, "-f", str(post_file)))
            if proc.returncode != 0:
                failures.append("post-data: " + _tail(proc.stderr, cluster.password, 3))
        phases["post_data"] = time.perf_counter() - mark
    seconds = time.perf_counter() - started
    result.seconds = round(seconds, 3)
    result.peak_rss_mb = _mb(max((p.maxrss_kib or 0) for p in procs))
    result.cpu_s = round(sum(p.cpu_s or 0.0 for p in procs), 2)
    result.tree_rss_mb = _mb(max(p.tree_rss_kib for p in procs))
    result.detail["phases"] = {k: round(v, 3) for k, v in phases.items()}
    result.detail["psql_processes"] = len(procs)
    if any(p.returncode is None for p in procs) or seconds > timeout:
        result.status, result.exit_code = "timeout", None
    elif failures:
        result.status, result.exit_code = "failed", next((p.returncode for p in procs if p.returncode), 1)
        result.error = "\n".join(failures)
    else:
        result.status, result.exit_code = "ok", 0
        result.rows_per_s = round(source_rows / seconds)
    return result


# ---------------------------------------------------------------- report


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def render(report: dict[str, Any]) -> str:
    lines = [
        f"source {report['source']}: {report['source_rows']:,} rows in {len(report['source_tables'])} tables, "
        f"{report['source_mb']} MB; jobs={report['jobs']}; runs={report['runs']}; "
        f"load {report['loadavg_before']} -> {report['loadavg_after']} on {report['cpus']} CPUs",
        "",
        f"{'contender':<9} {'run':>3} {'status':<8} {'exit':>4} {'wall s':>9} {'rows/s':>10} "
        f"{'peak RSS MB':>11} {'tree MB':>8} {'cpu s':>6} {'server s':>8} {'rows loaded':>12}",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['contender']:<9} {r['run']:>3} {r['status']:<8} {_fmt(r['exit_code']):>4} "
            f"{_fmt(r['seconds'], '.2f'):>9} {_fmt(r['rows_per_s'], ','):>10} {_fmt(r['peak_rss_mb'], '.1f'):>11} "
            f"{_fmt(r['tree_rss_mb'], '.1f'):>8} {_fmt(r['cpu_s'], '.1f'):>6} {_fmt(r['server_cpu_s'], '.1f'):>8} "
            f"{_fmt(r['rows_loaded'], ','):>12}"
        )
    lines.append("")
    for name, value in report["ratios"].items():
        lines.append(f"{name} (wall time, median of ok runs): {_fmt(value, '.2f')}")
    for name, value in report.get("cpu_ratios", {}).items():
        lines.append(f"{name} (CPU seconds, contender + server, median of ok runs): {_fmt(value, '.2f')}")
    for r in report["results"]:
        if r["error"]:
            lines.append(f"\n{r['contender']} run {r['run']} {r['status']}:\n  " + r["error"].replace("\n", "\n  "))
        for line in r["detail"].get("error_lines", []):
            lines.append(f"{r['contender']} run {r['run']} logged: {line}")
        for extra in ("missing_tables", "extra_tables"):
            if r["detail"].get("target", {}).get(extra):
                lines.append(f"{r['contender']} run {r['run']} {extra}: {r['detail']['target'][extra]}")
    return "\n".join(lines)


def best(results: list[dict[str, Any]], contender: str, figure: str = "seconds") -> float | None:
    """Median of a figure (wall seconds by default) over the contender's successful runs."""
    times = sorted(
        r[figure] for r in results if r["contender"] == contender and r["status"] == "ok" and r[figure] is not None
    )
    if not times:
        return None
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sqlite_path", type=Path)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=None, help="pgferry --jobs (default: pgferry's own, CPUs + 1)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per contender and run (default 600)")
    parser.add_argument("--only", action="append", choices=CONTENDERS, help="run only these contenders (repeatable)")
    parser.add_argument(
        "--pgloader-with", default=PGLOADER_WITH, help=f"pgloader WITH clause (default: {PGLOADER_WITH})"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (the table goes to stderr)"
    )
    args = parser.parse_args()

    src: Path = args.sqlite_path.resolve()
    if not src.is_file():
        parser.error(f"{src}: no such file")
    contenders = [c for c in CONTENDERS if not args.only or c in args.only]
    tables = user_tables(src)
    counts = source_counts(src, tables)
    source_rows = sum(counts.values())
    loadavg_before = os.getloadavg()
    results: list[Result] = []

    with tempfile.TemporaryDirectory(prefix="copy-bench-") as tmp:
        workdir = Path(tmp)
        plan = None
        if "floor" in contenders:
            log("floor: exporting CSV with sqlite3 -csv and generating the DDL (not timed)")
            plan = prepare_floor(src, tables, workdir, args.timeout)
            # The export leaves some 600 MB of dirty pages; written back during the first contender's
            # run, they slowed it by a third (pgferry, first in run 1, every time). Flush them now.
            os.sync()
        with throwaway_cluster() as cluster:
            log(f"cluster: {redact(cluster.dsn('postgres'))}")
            for run in range(1, args.runs + 1):
                # Rotate the order between runs so no contender always gets the warmest caches.
                order = contenders[(run - 1) % len(contenders) :] + contenders[: (run - 1) % len(contenders)]
                for name in order:
                    dbname = fresh_database(cluster, f"{name}_r{run}")
                    log(f"run {run}: {name} ...")
                    server_before = server_cpu_s(cluster.datadir)
                    if name == "pgferry":
                        result = run_pgferry(cluster, src, dbname, args.jobs, args.timeout, source_rows)
                    elif name == "pgloader":
                        result = run_pgloader(cluster, src, dbname, args.timeout, source_rows, args.pgloader_with,
                                              workdir)  # fmt: skip
                    else:
                        assert plan is not None
                        result = run_floor(cluster, plan, dbname, args.timeout, source_rows, workdir)
                    result.run = run
                    time.sleep(0.3)  # let the contender's backends exit, so their CPU is counted
                    result.server_cpu_s = round(server_cpu_s(cluster.datadir) - server_before, 2)
                    if result.status != "skipped":
                        try:
                            tc = target_counts(cluster, dbname, tables)
                            result.rows_loaded = tc["rows"]
                            result.detail["target"] = tc
                            if tc["rows"] != source_rows and result.status == "ok":
                                result.detail["row_mismatch"] = source_rows - tc["rows"]
                        except psycopg.Error as exc:
                            result.detail["target_error"] = str(exc).splitlines()[0]
                    log(f"run {run}: {name} {result.status} {_fmt(result.seconds, '.2f')} s, "
                        f"peak {_fmt(result.peak_rss_mb)} MB, rows {_fmt(result.rows_loaded, ',')}")  # fmt: skip
                    drop_database(cluster, dbname)
                    results.append(result)

    rows = [asdict(r) for r in results]
    for r in rows:
        parts = (r["cpu_s"], r["server_cpu_s"])
        r["total_cpu_s"] = None if None in parts else round(sum(parts), 2)
    c_ferry, c_loader, c_floor = (best(rows, name, "total_cpu_s") for name in CONTENDERS)
    for r in rows:  # per-table counts only where they tell something (a failed or short load)
        if r["status"] == "ok" and not r["detail"].get("row_mismatch"):
            r["detail"].get("target", {}).pop("per_table", None)
    t_ferry, t_loader, t_floor = best(rows, "pgferry"), best(rows, "pgloader"), best(rows, "floor")
    report = {
        "source": str(src),
        "source_mb": round(src.stat().st_size / 2**20, 1),
        "source_rows": source_rows,
        "source_tables": counts,
        "jobs": args.jobs or f"pgferry default ({min(8, (os.cpu_count() or 1) + 1)})",
        "runs": args.runs,
        "pgloader_with": args.pgloader_with,
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in loadavg_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "results": rows,
        "ratios": {
            "pgferry/floor": round(t_ferry / t_floor, 3) if t_ferry and t_floor else None,
            "pgloader/pgferry": round(t_loader / t_ferry, 3) if t_loader and t_ferry else None,
        },
        "cpu_ratios": {
            "pgferry/floor": round(c_ferry / c_floor, 3) if c_ferry and c_floor else None,
            "pgloader/pgferry": round(c_loader / c_ferry, 3) if c_loader and c_ferry else None,
        },
    }
    text = render(report)
    if args.json:
        log(text)
        print(json.dumps(report, default=str))
    else:
        print(text)
    return 0 if all(r.status in ("ok", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
