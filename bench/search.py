#!/usr/bin/env python
"""Search at size: how long the search page's query takes over a million messages.

Fills a fresh database (SQLite in a temporary directory, or with ``--database-url`` a
database of its own on that PostgreSQL server, dropped afterwards), migrated with
``flask --app wsgi db upgrade`` (bench.common.Server.prepare), with ``--messages``
messages (1,000,000) in ``--rooms`` rooms (1,000; one in 20 a direct conversation),
Chinese and English mixed, inserted in bulk (executemany on SQLite, with the search
triggers on and the app's ``webchat_grams`` function registered for them; COPY on
PostgreSQL, its two GIN indexes, trigrams and short pieces, built afterwards from their
own definitions). Then it times ``webchat.search.query.search`` — the function the search
page calls — in-process, for 50 texts: one, two and three or more characters, Chinese
and English, common, rare and absent ones (absent texts are the slowest: nothing stops
the search early).

Two readers over the same messages:

* *narrow*: 5 public rooms, all others private; a reader in 15 of them reads 20 rooms
  (about 1 % of the messages: rooms differ in size) — most matches are someone else's;
* *broad*: all rooms but one in ten public; a reader of no room reads every public one
  (about 90 % of the messages).

Each text is searched ``--repeat`` times per reader (3) after one untimed pass, each
search in a transaction of its own, as a request's; the report gives p50/p95/max per
length class, and the share of the messages each reader may read. Every loop is
bounded; nothing listens.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import _syspath  # noqa: F401 - first: puts the repository root on sys.path, takes bench/ off

from bench.common import (
    Server,
    add_database_option,
    check_server_options,
    git_commit,
    log,
    percentile,
    plain_postgres_url,
)

# --- what people say --------------------------------------------------------------------

ZH_WORDS = (
    "我们 你们 他们 大家 今天 明天 昨天 早上 下午 晚上 周末 会议 开会 数据 数据库 服务器 问题 已经 修复 部署 "
    "测试 版本 上线 用户 反馈 接口 文档 需求 开发 产品 设计 项目 进度 发布 回滚 日志 监控 报警 网络 延迟 缓存 "
    "内存 磁盘 备份 迁移 索引 查询 性能 优化 代码 评审 合并 分支 提交 构建 失败 成功 又挂了 重启 好的 收到 谢谢 "
    "没问题 稍等 马上 看看 怎么 为什么 可以 不行 老板 同事 客户 合同 预算 报告 计划 目标 季度 总结 吃饭 咖啡 "
    "会议室 白板 截图 链接 权限 账号 密码 登录 页面 按钮 手机 电脑 打印机"
).split()
ZH_TAILS = ("", "", "了", "的", "吗", "吧", "呢", "啊")
ZH_STOPS = ("。", "！", "？", "，", "", "")
EN_WORDS = (
    "the a to and of in is it for on that this we you I be are with have not will can at just "
    "deploy database server restart rollback latency cache index query meeting today tomorrow "
    "review merge branch build failed passed release version bug fix issue ticket customer report "
    "please thanks ok sure looks good lunch coffee later now again still down up slow fast disk "
    "memory network timeout error warning log alert dashboard login page button phone laptop printer"
).split()
# Planted in a few messages each: texts that are rare (a search that finds little).
RARE = ("鑫", "熔断器", "kubernetes", "Zeppelin")
RARE_EVERY = 40_000  # one message in this many has one of them

QUERIES = [
    # one character
    "会", "的", "我", "数", "了", "鑫", "龘", "a", "e", "z",
    # two characters
    "会议", "数据", "部署", "我们", "熔断", "麒麟", "问题", "上线", "db", "ok", "DB", "to", "zq", "##",
    # three or more
    "数据库", "服务器", "又挂了", "我们的", "熔断器", "量子计算", "会议室", "上线了", "性能优化", "重启服务器",
    "回滚版本", "今天下午", "deploy", "Database", "the", "server restart", "kubernetes", "Zeppelin", "xylophone",
    "rollback failed", "TIMEOUT", "latency", "50%_off", "looks good", "printer", "qwerty",
]  # fmt: skip
assert len(QUERIES) == 50 and len(set(QUERIES)) == 50


def sentences(rng: random.Random, count: int) -> list[str]:
    """A pool of sentences, half Chinese (no spaces), half English; messages join two."""
    pool = []
    for i in range(count):
        if i % 2:
            words = rng.choices(ZH_WORDS, k=rng.randint(2, 7))
            pool.append("".join(w + rng.choice(ZH_TAILS) for w in words) + rng.choice(ZH_STOPS))
        else:
            words = rng.choices(EN_WORDS, k=rng.randint(3, 10))
            pool.append(" ".join(words).capitalize() + rng.choice((".", "", "?", "!")))
    return pool


# --- filling the database ---------------------------------------------------------------

STAMP = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a DateTime on SQLite
START = datetime(2025, 1, 1)
BATCH = 50_000


def rows(args: argparse.Namespace):
    """users, rooms, memberships and a generator of message batches."""
    rng = random.Random(args.seed)
    now = START.strftime(STAMP)
    users = [(i, f"user{i:05d}", f"user{i:05d}", "!", now) for i in range(1, args.users + 1)]
    rooms, members = [], set()
    for r in range(1, args.rooms + 1):
        direct = r % 20 == 0
        a, b = rng.sample(range(1, args.users + 1), 2)
        if direct:
            name = f"@user{min(a, b):05d}+user{max(a, b):05d}"
            key, kind, people = f"dm/{min(a, b)}/{max(a, b)}", "direct", {a, b}
        else:
            name = key = f"room {r:04d}"
            kind, people = "room", {a, *rng.sample(range(1, args.users + 1), 9)}
        rooms.append((r, name, key, a, now, now, True, kind))
        members.update((u, r) for u in people)
    memberships = [(i, u, r, now) for i, (u, r) in enumerate(sorted(members), 1)]
    pool = sentences(rng, 20_000)
    weights = [rng.paretovariate(1.2) for _ in range(args.rooms)]  # some rooms far busier than others

    def messages():
        step = timedelta(days=365) / max(1, args.messages)
        done = 0
        while done < args.messages:
            n = min(BATCH, args.messages - done)
            room_ids = rng.choices(range(1, args.rooms + 1), weights=weights, k=n)
            firsts, seconds = rng.choices(pool, k=n), rng.choices(pool, k=n)
            batch = []
            for j in range(n):
                i = done + j + 1
                body = firsts[j] + (" " if j % 2 else "") + seconds[j]
                if i % RARE_EVERY == 7:
                    body += " " + RARE[(i // RARE_EVERY) % len(RARE)]
                kind = "system" if j % 97 == 0 else "user"
                at = (START + step * i).strftime(STAMP)
                batch.append((i, room_ids[j], (i % args.users) + 1, body if kind == "user" else "", kind, at))
            done += n
            yield batch

    return users, rooms, memberships, messages()


def fill_sqlite(path: Path, args: argparse.Namespace) -> None:
    from webchat.grams import SQL_FUNCTION, grams

    users, rooms, memberships, messages = rows(args)
    conn = sqlite3.connect(path)
    conn.create_function(SQL_FUNCTION, 1, grams, deterministic=True)  # the index of short pieces' triggers call it
    conn.execute("PRAGMA synchronous=OFF")
    with conn:
        conn.executemany(
            'INSERT INTO "user" (id, username, username_key, password_hash, created_at) VALUES (?, ?, ?, ?, ?)', users
        )
        conn.executemany(
            "INSERT INTO room (id, name, name_key, owner_id, created_at, last_activity_at, private, kind)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rooms,
        )
        conn.executemany("INSERT INTO membership (id, user_id, room_id, joined_at) VALUES (?, ?, ?, ?)", memberships)
    for batch in messages:  # the search triggers index each row as it goes in
        with conn:
            conn.executemany(
                "INSERT INTO message (id, room_id, author_id, body, kind, created_at) VALUES (?, ?, ?, ?, ?, ?)", batch
            )
        log(f"  {batch[-1][0]:,} messages")
    conn.close()


def fill_postgres(url: str, args: argparse.Namespace) -> None:
    import psycopg

    users, rooms, memberships, messages = rows(args)
    with psycopg.connect(url) as conn:
        # The GIN indexes (trigrams, short pieces) are built once at the end (from their
        # own definitions), not row by row.
        definitions = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'message' AND indexdef LIKE '%USING gin%'"
        ).fetchall()
        assert len(definitions) == 2, definitions
        for name, _ in definitions:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor() as cur:
            for table, columns, data in (
                ('"user"', "id, username, username_key, password_hash, created_at", users),
                ("room", "id, name, name_key, owner_id, created_at, last_activity_at, private, kind", rooms),
                ("membership", "id, user_id, room_id, joined_at", memberships),
            ):
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
            for batch in messages:
                with cur.copy("COPY message (id, room_id, author_id, body, kind, created_at) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
                log(f"  {batch[-1][0]:,} messages")
        for table in ('"user"', "room", "membership", "message"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
        conn.execute("SET maintenance_work_mem = '256MB'")
        for name, definition in definitions:
            log(f"  building {name}")
            t0 = time.monotonic()
            conn.execute(definition)
            conn.commit()
            log(f"  built {name} in {time.monotonic() - t0:.0f} s")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum would have done by the time anyone searches


# --- the readers ------------------------------------------------------------------------


def set_readers(execute, args: argparse.Namespace, setup: str) -> tuple[int, str]:
    """Make the rooms public or private for ``setup``; the reader's (id, name)."""
    if setup == "narrow":
        execute("UPDATE room SET private = (id > 5)")  # 5 public rooms
        reader = args.users + 1
        rooms = [r for r in range(6, args.rooms + 1) if r % 20][:15]  # 15 private rooms, no conversation
        members = [(reader, r) for r in rooms]
    else:
        execute("UPDATE room SET private = (id % 10 = 0)")  # one in ten private (conversations too)
        reader, members = args.users + 2, []
    name = f"reader{reader}"
    execute(
        f'INSERT INTO "user" (id, username, username_key, password_hash, created_at) '
        f"VALUES ({reader}, '{name}', '{name}', '!', '{START.strftime(STAMP)}')"
    )
    for user_id, room_id in members:
        execute(
            f"INSERT INTO membership (user_id, room_id, joined_at) VALUES ({user_id}, {room_id}, CURRENT_TIMESTAMP)"
        )
    return reader, name


def index_sizes(server: Server) -> str:
    """The search indexes' sizes on disk, for the report."""
    if server.admin_url:
        sql = (
            "SELECT string_agg(relname || ' ' || pg_size_pretty(pg_relation_size(oid)), ', ' ORDER BY relname) "
            "FROM pg_class WHERE relname IN ('ix_message_body_trgm', 'ix_message_grams')"
        )
        return server.scalar(sql)
    conn = sqlite3.connect(server.sqlite_path)
    try:  # an FTS5 index's terms and rowids are the blocks of its _data table
        sizes = [
            f"{name}_data {conn.execute(f'SELECT sum(length(block)) FROM {name}_data').fetchone()[0] / 2**20:.0f} MB"
            for name in ("message_fts", "message_grams")
        ]
    finally:
        conn.close()
    return ", ".join(sizes)


def readable_share(execute_scalar, reader: int) -> float:
    readable = execute_scalar(
        "SELECT count(*) FROM message m JOIN room r ON r.id = m.room_id "
        f"WHERE r.private = false OR EXISTS (SELECT 1 FROM membership WHERE room_id = r.id AND user_id = {reader})"
    )
    return readable / max(1, execute_scalar("SELECT count(*) FROM message"))


def measure(app, reader: tuple[int, str], repeat: int) -> dict[str, list[tuple[str, float, int]]]:
    """(text, ms, results on the page) per length class, ``repeat`` timings per text."""
    from webchat.extensions import db
    from webchat.search import query

    timings: dict[str, list[tuple[str, float, int]]] = {"1–2 characters": [], "3+ characters": []}
    with app.app_context():
        for text in QUERIES:  # untimed: connections, the statement cache, the OS's page cache
            query.search(*reader, text)
            db.session.rollback()
        for _ in range(repeat):
            for text in QUERIES:
                t0 = time.perf_counter()
                found = query.search(*reader, text)
                ms = (time.perf_counter() - t0) * 1000
                db.session.rollback()  # the end of a request
                key = "3+ characters" if len(text) >= query.TRIGRAM else "1–2 characters"
                timings[key].append((text, ms, len(found.hits)))
        db.session.remove()
        db.engine.dispose()
    return timings


def report_rows(setup: str, share: float, timings: dict) -> list[str]:
    lines = []
    for key, samples in timings.items():
        ms = sorted(t for _, t, _ in samples)
        slowest = max(samples, key=lambda s: s[1])
        lines.append(
            f"| {setup} ({share:.0%} of messages) | {key} | {len(ms)} | {percentile(ms, 0.5):.1f} | "
            f"{percentile(ms, 0.95):.1f} | {ms[-1]:.1f} (“{slowest[0]}”) |"
        )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=1_000_000, help="messages to fill in (1,000,000)")
    p.add_argument("--rooms", type=int, default=1000, help="rooms, one in 20 a direct conversation (1,000)")
    p.add_argument("--users", type=int, default=2000, help="accounts (2,000)")
    p.add_argument("--repeat", type=int, default=3, help="timed searches of each text per reader (3)")
    p.add_argument("--seed", type=int, default=14, help="random seed of the messages (14)")
    add_database_option(p)
    p.add_argument(
        "--keep", action="store_true", help="keep the database (the SQLite file's directory, or PostgreSQL's)"
    )
    args = p.parse_args(argv)
    check_server_options(p, args)
    if args.rooms < 40:
        p.error("--rooms must be at least 40 (the narrow reader joins 15 private rooms)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="webchat-bench-search-"))
    server = Server(tmp, database_url=args.database_url)  # only for its database: no server starts
    try:
        log(f"migrating {server.database}")
        server.prepare()
        t0 = time.monotonic()
        log(f"filling {args.messages:,} messages in {args.rooms:,} rooms")
        if args.database_url:
            url = plain_postgres_url(server.admin_url, server.db_name)
            fill_postgres(url, args)
            app_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        else:
            fill_sqlite(server.sqlite_path, args)
            app_url = f"sqlite:///{server.sqlite_path}"
        fill_seconds = time.monotonic() - t0
        sizes = index_sizes(server)
        log(f"filled in {fill_seconds:.0f} s; indexes: {sizes}")

        from config import TestingConfig
        from webchat import create_app

        lines = []
        for setup in ("narrow", "broad"):
            execute, scalar = _executors(server)
            reader = set_readers(execute, args, setup)
            share = readable_share(scalar, reader[0])
            app = create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI=app_url)
            log(f"searching as the {setup} reader ({share:.0%} of the messages), {args.repeat}× 50 texts")
            lines += report_rows(setup, share, measure(app, reader, args.repeat))
    except (RuntimeError, OSError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep and server.db_created:
            server.db_created = False  # stop() would drop it
            log(f"kept the database {server.db_name}")
        server.stop()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report = [
        f"### webchat search, {server.database.split(' ')[0]}, {args.messages:,} messages in {args.rooms:,} rooms "
        f"(filled in {fill_seconds:.0f} s), commit {git_commit()}",
        "",
        f"Search indexes: {sizes}.",
        "",
        "| reader | text | searches | p50 ms | p95 ms | slowest ms |",
        "|---|---|--:|--:|--:|---|",
        *lines,
        "",
        f"Command: `python bench/search.py {' '.join(sys.argv[1:] if argv is None else argv)}` "
        f"({time.monotonic() - started:.0f} s)",
    ]
    print("\n".join(report))
    return 0


def _executors(server: Server):
    """(execute one statement and commit, read one value) on the bench's database."""

    def execute(sql: str) -> None:
        if server.admin_url:
            import psycopg

            with psycopg.connect(plain_postgres_url(server.admin_url, server.db_name)) as conn:
                conn.execute(sql)
                conn.execute("ANALYZE room, membership")
        else:
            conn = sqlite3.connect(server.sqlite_path)
            with conn:
                conn.execute(sql)
            conn.close()

    return execute, server.scalar


if __name__ == "__main__":
    sys.exit(main())
