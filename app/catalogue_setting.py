"""Which catalogue a library dir uses, as the window's Settings set it: the local SQLite one
(the default) or a shared PostgreSQL server, by its address. No password is ever stored:
libpq finds it in ~/.pgpass or a pg_service.conf entry. The choice takes effect when the
app next opens the library (it is read once, at start).

``test_catalogue`` connects as ``samplescout doctor`` does (the server, pgvector's version,
the role's rights) and says what it found in plain words. It blocks for up to the connect
timeout: call it off the GUI thread. Other functions: any thread.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from app.library import (CATALOG_ENV, LibraryError, remember_catalog_address,
                         remembered_catalog_address)
from app.storage import is_shared_address

EXAMPLE = "postgresql://scout@studio-nas/samples"
PASSWORD_ADVICE = ("Passwords are never stored in Sample Scout's settings: keep the address "
                   "without it and put the password in ~/.pgpass "
                   "(host:port:database:user:password, readable only by you) or in a "
                   "pg_service.conf entry.")


@dataclass(frozen=True)
class CatalogueChoice:
    address: str | None          # the shared server remembered for this library; None: local
    override: str | None = None  # $SAMPLESCOUT_CATALOG, which wins over the setting


@dataclass(frozen=True)
class CatalogueTest:
    ok: bool
    words: str            # for the user
    detail: str = ""      # the technical line (doctor's), for a tooltip


def catalogue_choice(library_dir: str | os.PathLike) -> CatalogueChoice:
    return CatalogueChoice(remembered_catalog_address(Path(library_dir)),
                           os.environ.get(CATALOG_ENV) or None)


def address_problem(address: str) -> str | None:
    """Why ``address`` cannot be a shared catalogue's address, in plain words; None when
    it can."""
    address = address.strip()
    if not address:
        return f"Give the server's address, for example {EXAMPLE}."
    if not is_shared_address(address):
        return f"A shared catalogue's address starts with postgresql://, for example {EXAMPLE}."
    from app.pg_store import has_password
    if has_password(address):
        return "This address holds a password. " + PASSWORD_ADVICE
    return None


def choose_catalogue(library_dir: str | os.PathLike, address: str | None) -> None:
    """Remember the catalogue (None: the local one) for the next start; LibraryError with
    plain words when the address cannot be used."""
    if address is None:
        remember_catalog_address(Path(library_dir), "local")
        return
    problem = address_problem(address)
    if problem is not None:
        raise LibraryError(problem)
    remember_catalog_address(Path(library_dir), address.strip())


def test_catalogue(library_dir: str | os.PathLike, address: str) -> CatalogueTest:
    """Connect to the shared catalogue at ``address`` as this machine and report (blocks)."""
    problem = address_problem(address)
    if problem is not None:
        return CatalogueTest(False, problem)
    from app.machine import machine_id
    from app.pg_store import PgCatalog
    try:
        with PgCatalog(address.strip(), machine_id(Path(library_dir))) as catalog:
            facts = catalog.facts()
            detail = catalog.describe()
    except Exception as exc:  # noqa: BLE001 — every failure is the answer, in words
        return CatalogueTest(False, failure_words(exc, address), f"{type(exc).__name__}: {exc}")
    rights = ("This machine may add samples and edit tags and collections there."
              if facts["writes"] else
              "This role may search and audition, but not add or change anything (read-only).")
    if not facts["reads_stamps"]:
        user = _parts(address).get("user") or "this role"
        rights += (" It cannot tell when this machine's offline copy is out of date: the "
                   f"server's administrator should run GRANT SELECT ON ALL SEQUENCES IN "
                   f"SCHEMA public TO {user}.")
    where = facts["address"].split("://", 1)[-1]
    return CatalogueTest(True, f"Connected to {where}: PostgreSQL {facts['server']} with "
                               f"pgvector {facts['pgvector']}. {rights}", detail)


def _parts(address: str) -> dict:
    try:
        import psycopg
        return psycopg.conninfo.conninfo_to_dict(address)
    except Exception:  # noqa: BLE001 — only used to name things in a message
        return {}


def failure_words(exc: BaseException, address: str) -> str:
    """A failed connection to the shared catalogue as a sentence that says what to do."""
    from app.pg_store import PgAccessError, PgSchemaError
    text = str(exc)
    low = text.lower()
    parts = _parts(address)
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    if isinstance(exc, (PgSchemaError, PgAccessError)):
        return text[:1].upper() + text[1:] + "."
    if "password authentication failed" in low or "no password supplied" in low:
        return ("The server asks for a password for this role and none was found. "
                + PASSWORD_ADVICE)
    found = re.search(r'database "([^"]+)" does not exist', text)
    if found:
        return (f"The server has no database named {found.group(1)}: create it "
                f"(createdb {found.group(1)}) or correct the address.")
    found = re.search(r'role "([^"]+)" does not exist', text)
    if found:
        return (f"The server knows no role named {found.group(1)}: ask its administrator to "
                "create it, or correct the user in the address.")
    if "pg_hba.conf" in low:
        return ("The server does not let this machine or role connect (its pg_hba.conf): ask "
                "its administrator to allow it.")
    if "translate host name" in low or "name or service not known" in low:
        return f"The host name {host} cannot be found: check the address."
    if "timeout" in low or "timed out" in low:
        return (f"The server at {host} did not answer in time: check the network, the firewall "
                "and the address.")
    if "refused" in low or "cannot be reached" in low:
        return (f"Nothing answers at {host}:{port}: is PostgreSQL running there, listening on "
                "the network, and is the address right?")
    if "optional packages" in low:
        return text
    return f"The shared catalogue could not be opened: {text.splitlines()[0] if text else type(exc).__name__}."
