"""A small lending-library application for the doctor's tests: not the forum, so nothing can lean on it.

`build_library(path, defects=True)` writes the database; `run_app(path, log)` runs the app's request
handlers through pgferry.workload.capture (request scopes, call sites) and writes the workload log.
With defects, the schema carries planted index problems (listed in PLANTED), a wide `members` table
with three column families, and the handlers have an N+1 loop and a multi-write request without a
transaction. Without defects, the same application runs on a well-indexed, narrow schema.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from pgferry.workload import capture, request_scope

SOCIAL = ("github", "mastodon", "bluesky", "youtube", "twitch", "steam", "discord", "linkedin")
ADDRESS = ("street", "city", "zip_code", "region")
PREFS = ("theme", "language", "time_zone")

# index name -> reason the doctor must give (None: legitimate, must not be flagged on schema grounds)
PLANTED = {
    "idx_books_author": None,
    "idx_books_author_copy": "exact_duplicate",
    "idx_books_id": "duplicates_primary_key",
    "idx_authors_email": "duplicates_unique",
    "idx_authors_email_nocase": None,  # a NOCASE index is not the UNIQUE (BINARY) one
    "idx_authors_lower_name": None,
    "idx_authors_lower_name_again": "exact_duplicate",  # same expression, other spelling
    "idx_loans_member_date": None,
    "idx_loans_member_date_reversed": "exact_duplicate",  # every key reversed: the same index read backwards
    "idx_loans_member_mixed": None,  # one key reversed: a different order
    "idx_loans_member": "prefix_covered",
    "idx_loans_book": None,
    "idx_loans_open_by_book": None,  # partial: not a duplicate of idx_loans_book
    "idx_books_in_print": "low_selectivity",
}

DEFECT_DDL = [
    'CREATE INDEX "idx_books_author" ON "books" ("author_id")',
    'CREATE INDEX "idx_books_author_copy" ON "books" ("author_id")',
    'CREATE INDEX "idx_books_id" ON "books" ("id")',
    'CREATE INDEX "idx_authors_email" ON "authors" ("email")',
    'CREATE INDEX "idx_authors_email_nocase" ON "authors" ("email" COLLATE NOCASE)',
    'CREATE INDEX "idx_authors_lower_name" ON "authors" (lower("name"))',
    'CREATE INDEX "idx_authors_lower_name_again" ON "authors" (LOWER( name ))',
    'CREATE INDEX "idx_loans_member_date" ON "loans" ("member_id", "loaned_at")',
    'CREATE INDEX "idx_loans_member_date_reversed" ON "loans" ("member_id" DESC, "loaned_at" DESC)',
    'CREATE INDEX "idx_loans_member_mixed" ON "loans" ("member_id", "loaned_at" DESC)',
    'CREATE INDEX "idx_loans_member" ON "loans" ("member_id")',
    'CREATE INDEX "idx_loans_book" ON "loans" ("book_id")',
    'CREATE INDEX "idx_loans_open_by_book" ON "loans" ("book_id") WHERE "returned_at" IS NULL',
    'CREATE INDEX "idx_books_in_print" ON "books" ("in_print")',
]
CLEAN_DDL = [
    'CREATE INDEX "idx_books_author_published" ON "books" ("author_id", "published_at")',
    'CREATE INDEX "idx_books_genre_published" ON "books" ("genre", "published_at")',
    'CREATE UNIQUE INDEX "idx_books_isbn" ON "books" ("isbn")',
    'CREATE INDEX "idx_loans_book" ON "loans" ("book_id")',
    'CREATE INDEX "idx_loans_member_date" ON "loans" ("member_id", "loaned_at")',
    'CREATE INDEX "idx_authors_lower_name" ON "authors" (lower("name"))',
]
GENRES = ("fiction", "history", "science", "poetry", "travel", "crime", "children", "art", "music", "sport",
          "cooking", "law")  # fmt: skip
SIZES = {"authors": 400, "books": 3000, "members": 1500, "loans": 12000}


def _members_ddl(wide: bool) -> str:
    columns = ['"id" INTEGER PRIMARY KEY', '"handle" TEXT NOT NULL', '"joined_at" TEXT NOT NULL']
    if wide:
        columns += [f'"{c}" TEXT' for c in (*ADDRESS, *(f"{s}_url" for s in SOCIAL), *PREFS)]
        columns += ['"nickname" TEXT', '"notes" TEXT', '"level" INTEGER', '"points" INTEGER NOT NULL DEFAULT 0']
    return f'CREATE TABLE "members" ({", ".join(columns)})'


def build_library(path: str | Path, *, defects: bool = True, seed: int = 7) -> Path:
    """Write the library database at `path` (replacing it)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(
        'CREATE TABLE "authors" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL, "email" TEXT NOT NULL UNIQUE, '
        '"country" TEXT, "created_at" TEXT NOT NULL)'
    )
    conn.execute(
        'CREATE TABLE "books" ("id" INTEGER PRIMARY KEY, "author_id" INTEGER NOT NULL REFERENCES "authors" ("id"), '
        '"title" TEXT NOT NULL, "isbn" TEXT, "published_at" TEXT NOT NULL, "in_print" INTEGER NOT NULL DEFAULT 1, '
        '"genre" TEXT NOT NULL)'
    )
    conn.execute(_members_ddl(defects))
    conn.execute(
        'CREATE TABLE "loans" ("id" INTEGER PRIMARY KEY, "book_id" INTEGER NOT NULL REFERENCES "books" ("id"), '
        '"member_id" INTEGER NOT NULL REFERENCES "members" ("id"), "loaned_at" TEXT NOT NULL, "returned_at" TEXT)'
    )
    conn.execute('CREATE TABLE "events" ("id" INTEGER PRIMARY KEY, "kind" TEXT NOT NULL, "ref" INTEGER, "at" TEXT)')
    day = 19000  # days since 1970: 2022-01-08
    for i in range(1, SIZES["authors"] + 1):
        conn.execute(
            "INSERT INTO authors VALUES (?, ?, ?, ?, date(?, 'unixepoch'))",
            (i, f"Author {i}", f"author{i}@example.org", rng.choice(("FR", "DE", "PT", None)), (day + i // 4) * 86400),
        )
    for i in range(1, SIZES["books"] + 1):
        conn.execute(
            "INSERT INTO books VALUES (?, ?, ?, ?, date(?, 'unixepoch'), ?, ?)",
            (
                i,
                rng.randint(1, SIZES["authors"]),
                f"Book {i}",
                f"978-{i:09d}",
                (day + i // 3) * 86400,
                1 if rng.random() < 0.9 else 0,
                rng.choice(GENRES),
            ),
        )
    for i in range(1, SIZES["members"] + 1):
        values: dict[str, object] = {"id": i, "handle": f"member{i}", "joined_at": f"2022-{1 + i % 12:02d}-01"}
        if defects:
            if rng.random() < 0.25:
                values.update({c: f"{c} {i}" for c in ADDRESS})
            if rng.random() < 0.15:
                chosen = [s for s in SOCIAL if rng.random() < 0.3] or [rng.choice(SOCIAL)]
                values.update({f"{s}_url": f"https://{s}.example/{i}" for s in chosen})
            if rng.random() < 0.2:
                values.update({"theme": rng.choice(("dark", "light")), "language": "en", "time_zone": "UTC"})
            values["points"] = rng.randint(0, 500)
            values["level"] = rng.randint(1, 9)
        names = ", ".join(f'"{k}"' for k in values)
        conn.execute(f"INSERT INTO members ({names}) VALUES ({', '.join('?' for _ in values)})", list(values.values()))
    for i in range(1, SIZES["loans"] + 1):
        loaned = (day + 200 + i // 20) * 86400
        returned = None if rng.random() < 0.1 else loaned + 14 * 86400
        conn.execute(
            "INSERT INTO loans VALUES (?, ?, ?, datetime(?, 'unixepoch'), datetime(?, 'unixepoch'))",
            (i, rng.randint(1, SIZES["books"]), rng.randint(1, SIZES["members"]), loaned, returned),
        )
    for sql in DEFECT_DDL if defects else CLEAN_DDL:
        conn.execute(sql)
    conn.execute("COMMIT")
    if not defects:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("ANALYZE")
    conn.close()
    return path


class LibraryApp:
    """The request handlers, written the way the legacy app wrote them (defects) or done right."""

    def __init__(self, conn, *, defects: bool) -> None:  # type: ignore[no-untyped-def]
        self.db = conn
        self.defects = defects

    def book_page(self, book_id: int) -> dict:
        book = self.db.execute("SELECT * FROM books WHERE id = ?", (book_id,)).fetchone()
        loans = self.db.execute("SELECT id, member_id FROM loans WHERE book_id = ?", (book_id,)).fetchall()
        if self.defects:
            borrowers = [
                self.db.execute("SELECT handle FROM members WHERE id = ?", (member,)).fetchone()
                for _id, member in loans
            ]
        else:
            borrowers = self.db.execute(
                "SELECT m.handle FROM loans AS l JOIN members AS m ON m.id = l.member_id WHERE l.book_id = ?",
                (book_id,),
            ).fetchall()
        return {"book": book, "borrowers": borrowers}

    def author_page(self, author_id: int) -> list:
        self.db.execute("SELECT * FROM authors WHERE id = ?", (author_id,)).fetchone()
        return self.db.execute(
            "SELECT id, title FROM books WHERE author_id = ? ORDER BY published_at DESC", (author_id,)
        ).fetchall()

    def genre_list(self, genre: str) -> list:
        return self.db.execute(
            "SELECT id, title FROM books WHERE genre = ? ORDER BY published_at DESC LIMIT 10", (genre,)
        ).fetchall()

    def by_isbn(self, isbn: str) -> tuple | None:
        return self.db.execute("SELECT * FROM books WHERE isbn = ?", (isbn,)).fetchone()

    def member_loans(self, member_id: int) -> list:
        return self.db.execute(
            "SELECT id, book_id, loaned_at FROM loans WHERE member_id = ? ORDER BY loaned_at DESC LIMIT 20",
            (member_id,),
        ).fetchall()

    def author_search(self, name: str) -> list:
        return self.db.execute("SELECT id FROM authors WHERE lower(name) = ?", (name.lower(),)).fetchall()

    def lend(self, book_id: int, member_id: int) -> None:
        if not self.defects:
            self.db.execute("BEGIN IMMEDIATE")
        self.db.execute(
            "INSERT INTO loans (book_id, member_id, loaned_at) VALUES (?, ?, datetime('now'))", (book_id, member_id)
        )
        self.db.execute("UPDATE books SET in_print = in_print WHERE id = ?", (book_id,))
        self.db.execute("INSERT INTO events (kind, ref, at) VALUES ('lend', ?, datetime('now'))", (book_id,))
        if not self.defects:
            self.db.execute("COMMIT")

    def give_back(self, loan_id: int) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("UPDATE loans SET returned_at = datetime('now') WHERE id = ?", (loan_id,))
        self.db.execute("INSERT INTO events (kind, ref, at) VALUES ('return', ?, datetime('now'))", (loan_id,))
        self.db.execute("COMMIT")


def run_app(path: str | Path, log: str | Path, *, defects: bool = True, requests: int = 60, seed: int = 3) -> Path:
    """Run a mix of requests against the database, capturing every statement to `log` (JSON Lines)."""
    rng = random.Random(seed)
    raw = sqlite3.connect(path, isolation_level=None)
    conn = capture(raw, str(log))
    try:
        if defects:
            conn.execute("PRAGMA journal_mode = WAL2")  # what the legacy code asked for: ignored by SQLite
        else:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA foreign_keys = ON")
        app = LibraryApp(conn, defects=defects)
        popular = [
            b for (b,) in raw.execute("SELECT book_id FROM loans GROUP BY book_id HAVING count(*) >= 6 LIMIT 20")
        ]
        for k in range(requests):
            with request_scope(f"req-{k}"):
                choice = k % 8
                if choice == 0:
                    app.book_page(rng.choice(popular))
                elif choice == 1:
                    app.author_page(rng.randint(1, SIZES["authors"]))
                elif choice == 2:
                    app.genre_list(rng.choice(GENRES))
                elif choice == 3:
                    app.by_isbn(f"978-{rng.randint(1, SIZES['books']):09d}")
                elif choice == 4:
                    app.member_loans(rng.randint(1, SIZES["members"]))
                elif choice == 5:
                    app.author_search(f"Author {rng.randint(1, SIZES['authors'])}")
                elif choice == 6:
                    app.lend(rng.randint(1, SIZES["books"]), rng.randint(1, SIZES["members"]))
                else:
                    app.give_back(rng.randint(1, SIZES["loans"]))
    finally:
        conn.close()
    return Path(log)
