"""The engine's SQL on Apache Spark: a checked translation of the DuckDB builders' output.

The SQL builders (`zige.engine.sql`) write one dialect, DuckDB's, restricted to a small
dialect-neutral subset: selects, joins (inner, outer, semi, anti), filters, CASE, GROUP BY with
aggregate FILTER, `min_by`/`max_by`, window `row_number`/`count`, CTEs and UNION, and a short
list of scalar functions. `to_spark()` parses a query with sqlglot, **checks every node against
that subset** and translates it to Spark SQL. Anything outside the subset raises
`UnsupportedSql` naming the construct: an unknown function, an ASOF or POSITIONAL join, a
regular-expression flag Spark would drop, a cast to a type whose meaning differs. Nothing passes
through silently (sqlglot on its own copies an unknown function by name and drops what it cannot
express; here both are errors).

Where DuckDB and Spark spell or mean a construct differently, the translation is explicit:

| DuckDB (as the builders write it) | Spark | why |
|---|---|---|
| `trim(x)` | `trim(BOTH '<the 17 Unicode space separators>' FROM x)` | DuckDB's one-argument trim removes every Unicode space separator (category Zs, U+3000 included); Spark's only U+0020 |
| `regexp_full_match(x, p)` | `x RLIKE '^(?:p)\\z'` | Spark's RLIKE searches; `\\z` because Java's `$` also matches before a final line break |
| `regexp_replace(x, p, r, 'g')` | `regexp_replace(x, p, r)` | Spark always replaces all; without `'g'` DuckDB replaces the first only, so that form is refused |
| `\\s` in a pattern | `[\\t\\n\\f\\r ]` | RE2's `\\s` has no vertical tab, Java's has |
| `CAST(try_strptime(x, '%Y%m%d') AS DATE)` | `try_to_date(x, 'yyyyMMdd')` | formats mapped one by one; an unmapped format is refused |
| `x / y` | `try_divide(CAST(x AS DOUBLE), CAST(y AS DOUBLE))` | DuckDB's `/` is always DOUBLE division, NULL for a zero divisor; Spark's divides decimals as decimals |
| `x - DATE '1970-01-01'` | `datediff(x, DATE '1970-01-01')` | date minus date is an integer in DuckDB, an interval in Spark |
| `CAST(x + INTERVAL n MONTH AS DATE)` | `add_months(x, n)` | both clamp to the month end |

Spark runs with ANSI mode on (its default since 4.0), as strict as DuckDB about casts and
overflow. Regular expressions are RE2 in DuckDB and java.util.regex in Spark: the checker refuses
the pattern syntax where the two differ (POSIX classes, class intersection `&&`, `\\Q…\\E`, a
nested `[` in a class).
"""

from __future__ import annotations

import sqlglot
from sqlglot import ErrorLevel, exp
from sqlglot.errors import ParseError

# DuckDB's one-argument trim() removes exactly these (Unicode category Zs), measured over every
# code point of the Basic and Supplementary Multilingual Planes.
SPACE_SEPARATORS = "".join(
    chr(c) for c in (0x20, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000)
)

# strftime formats the builders use -> Spark datetime patterns. DuckDB's %m/%d take one or two
# digits when a separator follows; Spark's M/d do the same. Without separators both need two.
DATE_FORMATS = {"%Y%m%d": "yyyyMMdd", "%Y-%m-%d": "yyyy-M-d"}

# The subset: node types whose Spark translation means what the DuckDB query means.
_NEUTRAL_NODES: frozenset[type[exp.Expression]] = frozenset(
    {
        # query structure
        exp.Select, exp.From, exp.Where, exp.Group, exp.Having, exp.Order, exp.Ordered, exp.Join,
        exp.Table, exp.TableAlias, exp.Subquery, exp.With, exp.CTE, exp.Union, exp.Exists,
        exp.Alias, exp.Column, exp.Identifier, exp.Star, exp.Paren, exp.Distinct, exp.Limit,
        exp.Window, exp.WindowSpec, exp.Filter,
        # values and logic
        exp.Literal, exp.Null, exp.Boolean, exp.Cast, exp.TryCast, exp.DataType, exp.DataTypeParam,
        exp.Case, exp.If, exp.Coalesce, exp.And, exp.Or, exp.Not, exp.Is, exp.In, exp.Between,
        exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
        exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv, exp.Neg, exp.Floor, exp.Abs, exp.Round,
        exp.Greatest, exp.Least,
        # text
        exp.DPipe, exp.Trim, exp.Replace, exp.Translate, exp.Upper, exp.Lower, exp.Substring,
        exp.SplitPart, exp.Contains, exp.Length, exp.Pad, exp.RegexpReplace, exp.RegexpFullMatch,
        # dates
        exp.Year, exp.Month, exp.Day, exp.Interval, exp.Var,
        # aggregates and windows
        exp.Count, exp.Min, exp.Max, exp.Sum, exp.ArgMin, exp.ArgMax, exp.RowNumber,
    }
)  # fmt: skip
_ANONYMOUS_FUNCTIONS = frozenset({"try_strptime"})  # rewritten below, only in their one form
_CAST_TYPES = frozenset(
    {
        exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.DOUBLE,
        exp.DataType.Type.DECIMAL, exp.DataType.Type.DATE, exp.DataType.Type.BOOLEAN,
    }
)  # fmt: skip
_JOIN_KINDS = frozenset({"", "INNER", "OUTER", "SEMI", "ANTI", "CROSS"})


class UnsupportedSql(ValueError):
    """A construct outside the dialect-neutral subset: the query cannot run the same on Spark."""


def to_spark(query: str) -> str:
    """The Spark SQL for one DuckDB query of the neutral subset; `UnsupportedSql` otherwise."""
    try:
        tree = sqlglot.parse_one(query, read="duckdb")
    except ParseError as exc:
        raise UnsupportedSql(f"not parseable as DuckDB SQL: {exc}") from None
    if not isinstance(tree, exp.Expression):
        raise UnsupportedSql(f"not a query: {query[:80]!r}")
    check_neutral(tree)
    translated = _translate(tree)
    try:
        return translated.sql(dialect="spark", unsupported_level=ErrorLevel.RAISE)
    except sqlglot.errors.UnsupportedError as exc:
        raise UnsupportedSql(str(exc)) from None


def check_neutral(tree: exp.Expression) -> None:
    """Raise `UnsupportedSql` for the first node outside the subset."""
    for node in tree.walk():
        kind = type(node)
        if kind is exp.Anonymous:
            name = node.name.lower()
            if name not in _ANONYMOUS_FUNCTIONS:
                raise UnsupportedSql(f"function {node.name}() is not in the dialect-neutral subset")
            continue
        if kind not in _NEUTRAL_NODES:
            raise UnsupportedSql(
                f"{kind.__name__} ({node.sql('duckdb')[:80]}) is not in the dialect-neutral subset"
            )
        if isinstance(node, exp.Star) and any(
            node.args.get(k) for k in ("except_", "except", "replace", "rename")
        ):
            raise UnsupportedSql(
                f"{node.sql('duckdb')} (EXCLUDE/REPLACE) is not in the dialect-neutral subset"
            )
        if isinstance(node, exp.Join):
            method = (node.args.get("method") or "").upper()
            join_kind = (node.args.get("kind") or "").upper()
            if method or join_kind not in _JOIN_KINDS:
                raise UnsupportedSql(f"{method or join_kind} JOIN is not in the dialect-neutral subset")
        elif (
            isinstance(node, exp.DataType)
            and isinstance(node.parent, exp.Cast | exp.TryCast)
            and node.this not in _CAST_TYPES
        ):
            raise UnsupportedSql(f"cast to {node.sql('duckdb')} is not in the dialect-neutral subset")


def _literal(node: exp.Expression | None, what: str) -> str:
    if not isinstance(node, exp.Literal) or not node.is_string:
        raise UnsupportedSql(f"{what} must be a string literal")
    return str(node.this)


def java_regex(pattern: str) -> str:
    """An RE2 pattern as java.util.regex reads it the same; `UnsupportedSql` where they differ."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            pair = pattern[i : i + 2]
            if pair in ("\\Q", "\\E"):
                raise UnsupportedSql(f"regular expression {pattern!r}: \\Q…\\E quoting differs")
            if pair == "\\s":
                out.append("\\t\\n\\f\\r " if in_class else "[\\t\\n\\f\\r ]")
            else:
                out.append(pair)
            i += 2
            continue
        if in_class:
            if ch == "[":
                raise UnsupportedSql(
                    f"regular expression {pattern!r}: '[' inside a class (POSIX class or union)"
                )
            if pattern.startswith("&&", i):
                raise UnsupportedSql(f"regular expression {pattern!r}: '&&' is class intersection in Java")
            if ch == "]" and out[-1] not in ("[", "[^"):
                in_class = False
        elif ch == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                if i < len(pattern) and pattern[i] == "]":
                    out.append("]")  # a leading ] is a literal in both
                    i += 1
                continue
            out.append("[")
            i += 1
            if i < len(pattern) and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        out.append(ch)
        i += 1
    if in_class:
        raise UnsupportedSql(f"regular expression {pattern!r}: unterminated class")
    return "".join(out)


def _is_date_literal(node: exp.Expression) -> bool:
    return (
        isinstance(node, exp.Cast)
        and node.to.this == exp.DataType.Type.DATE
        and isinstance(node.this, exp.Literal)
    )


def _translate(node: exp.Expression) -> exp.Expression:
    """`_rewrite` applied to every node, parent before children (in place)."""
    node = _rewrite(node)
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _translate(value))
        elif isinstance(value, list):
            node.set(key, [_translate(v) if isinstance(v, exp.Expression) else v for v in value])
    return node


def _rewrite(node: exp.Expression) -> exp.Expression:
    """DuckDB meaning -> Spark spelling, one construct at a time (see the module table)."""
    if isinstance(node, exp.Trim) and node.args.get("expression") is None:
        node.set("expression", exp.Literal.string(SPACE_SEPARATORS))
        return node
    if isinstance(node, exp.RegexpFullMatch):
        pattern = java_regex(_literal(node.expression, "a regexp_full_match pattern"))
        return exp.RegexpLike(this=node.this, expression=exp.Literal.string(f"^(?:{pattern})\\z"))
    if isinstance(node, exp.RegexpReplace):
        modifiers = node.args.get("modifiers")
        if modifiers is None or _literal(modifiers, "regexp_replace options") != "g":
            raise UnsupportedSql("regexp_replace without 'g' replaces the first match only in DuckDB")
        replacement = _literal(node.args.get("replacement"), "a regexp_replace replacement")
        if "\\" in replacement or "$" in replacement:
            raise UnsupportedSql("regexp_replace back-references are spelled differently in Spark")
        return exp.Anonymous(
            this="regexp_replace",
            expressions=[
                node.this,
                exp.Literal.string(java_regex(_literal(node.expression, "a regexp_replace pattern"))),
                exp.Literal.string(replacement),
            ],
        )
    if (
        isinstance(node, exp.Cast)
        and isinstance(node.this, exp.Anonymous)
        and node.this.name.lower() == "try_strptime"
        and node.to.this == exp.DataType.Type.DATE
    ):
        value, fmt = node.this.expressions
        fmt_text = _literal(fmt, "a try_strptime format")
        if fmt_text not in DATE_FORMATS:
            raise UnsupportedSql(f"date format {fmt_text!r} has no checked Spark equivalent")
        return exp.Anonymous(
            this="try_to_date", expressions=[value, exp.Literal.string(DATE_FORMATS[fmt_text])]
        )
    if isinstance(node, exp.Div):
        # DuckDB's `/` is always DOUBLE division, NULL for a zero divisor.
        return exp.Anonymous(
            this="try_divide",
            expressions=[
                exp.Cast(this=node.this, to=exp.DataType.build("DOUBLE")),
                exp.Cast(this=node.expression, to=exp.DataType.build("DOUBLE")),
            ],
        )
    if isinstance(node, exp.Sub) and (_is_date_literal(node.expression) or _is_date_literal(node.this)):
        if not _is_date_literal(node.expression):
            raise UnsupportedSql("only `x - DATE '…'` (days as an integer) is supported")
        return exp.Anonymous(this="datediff", expressions=[node.this, node.expression])
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Add):
        interval = node.this.expression
        if isinstance(interval, exp.Interval) and node.to.this == exp.DataType.Type.DATE:
            months = interval.this
            if not (isinstance(months, exp.Literal) and str(months.this).lstrip("-").isdigit()):
                raise UnsupportedSql("INTERVAL months must be an integer literal")
            return exp.Anonymous(
                this="add_months", expressions=[node.this.this, exp.Literal.number(int(str(months.this)))]
            )
    # Nodes are visited parent first, so these two are reached only outside their one form.
    if isinstance(node, exp.Anonymous) and node.name.lower() == "try_strptime":
        raise UnsupportedSql("try_strptime is supported only as CAST(try_strptime(x, fmt) AS DATE)")
    if isinstance(node, exp.Interval):
        raise UnsupportedSql("INTERVAL is supported only as CAST(x + INTERVAL n MONTH AS DATE)")
    return node
