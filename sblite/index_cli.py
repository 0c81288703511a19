"""`sblite index add|list|drop`: field indexes of a running server's collections (HTTP with the root token)."""

from __future__ import annotations

import argparse
import shlex
import urllib.parse

from sblite.manage import add_connection_options, call


def _query(**params: str | None) -> str:
    return "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})


def index_add(args: argparse.Namespace) -> None:
    """Create an index on a document field (nothing changes if it exists)."""
    call(args, "POST", "/sudo/index" + _query(col=args.col, field=args.field))
    print(f"indexed {args.field} in {args.col}")


def index_list(args: argparse.Namespace) -> None:
    """Print the field indexes of one collection, or of all."""
    indexes = call(args, "GET", "/sudo/index" + _query(col=args.col))
    if not indexes:
        print("no indexes")
    for index in indexes:
        print(f"{index['collection']:<24} {index['field']:<32} {index['created']}")


def index_drop(args: argparse.Namespace) -> None:
    """Drop the index on a field."""
    call(args, "DELETE", "/sudo/index" + _query(col=args.col, field=args.field))
    print(f"dropped the index on {args.field} in {args.col}")


def index_suggest(args: argparse.Namespace) -> None:
    """Print the indexes the slow-query log suggests, each with the command that adds it."""
    found = call(args, "GET", "/sudo/index/suggestions" + _query(col=args.col))
    if not found:
        print("no suggestions (3 slow queries on one field within 10 minutes make one)")
    for s in found:
        print(f"{s['collection']:<24} {s['field']:<32} {s['slowQueries']} slow queries, the last {s['lastMs']:,.0f} ms"
              f" at {s['lastSeen']}: sblite index add --col {s['collection']} --field {shlex.quote(s['field'])}")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> \
        argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add the `index` commands; returns their table, for more `index` subcommands."""
    index = commands.add_parser("index", help="manage indexes on document fields").add_subparsers(
        dest="action", required=True)
    for name, handler, help_text in (("add", index_add, "index a document field of a collection"),
                                     ("drop", index_drop, "drop a field index")):
        sub = index.add_parser(name, help=help_text)
        sub.add_argument("--col", required=True, help="the collection")
        sub.add_argument("--field", required=True, help="the field, dots for nested fields (a.b)")
        add_connection_options(sub)
        sub.set_defaults(handler=handler)
    sub = index.add_parser("list", help="list field indexes")
    sub.add_argument("--col", help="only this collection's")
    add_connection_options(sub)
    sub.set_defaults(handler=index_list)
    sub = index.add_parser("suggest", help="indexes the slow-query log suggests (repeated slow queries on a field)")
    sub.add_argument("--col", help="only this collection's")
    add_connection_options(sub)
    sub.set_defaults(handler=index_suggest)
    return index
