"""The column contract of a data bundle, and mapping a brand's column names onto it.

Each table lists its columns with what kind of cell each holds and whether it is
required. A brand's own names are mapped by, in this order: an explicit mapping (the
``columns`` argument, then ``columns.yaml`` in the bundle), our own name, then a small
table of common synonyms (WeCom API names, mall exports, Chinese spreadsheet headers).
Names are compared stripped and case-insensitively.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import yaml

from simdomain.errors import InputError, Problem
from simdomain.textio import read_text


@dataclass(frozen=True)
class Column:
    """One column of the contract.

    ``kind`` says how its cells are read: ``id`` (text identifying a person), ``time``,
    ``money`` (yuan), ``spend`` (yuan, 0 or more), ``count`` (a whole number 0 or more), ``text`` (kept as is),
    ``category`` (a short code), ``flag`` (yes/no), ``deleted_by``, ``touch_kind`` or
    ``month``.
    """

    name: str
    kind: str
    required: bool = False
    synonyms: tuple[str, ...] = ()


_CUSTOMER = ("external_userid", "buyer_id", "buyer", "user_id", "unionid", "openid",
             "customer", "member_id", "客户id", "买家id", "会员id", "用户id")

TABLES: dict[str, tuple[Column, ...]] = {
    "orders": (
        Column("customer_id", "id", True, _CUSTOMER),
        Column("ordered_at", "time", True, ("pay_time", "paid_at", "order_time", "ordered_on",
                                            "date", "付款时间", "支付时间", "下单时间")),
        Column("amount", "money", True, ("payment", "pay_amount", "paid_amount", "amount_cny",
                                         "total_amount", "实付金额", "支付金额", "金额")),
        Column("order_id", "text", False, ("order_no", "order_sn", "tid", "订单号", "订单编号")),
        Column("channel", "category", False, ("store", "platform", "shop", "source", "渠道",
                                              "店铺", "平台")),
        Column("items", "count", False, ("quantity", "qty", "num", "数量", "件数")),
    ),
    "contacts": (
        Column("customer_id", "id", True, _CUSTOMER),
        Column("added_at", "time", True, ("createtime", "add_time", "created_at", "添加时间")),
        Column("channel", "category", True, ("state", "channel_code", "渠道", "来源")),
        Column("staff_id", "category", False, ("userid", "follow_user", "staff", "员工",
                                               "员工id")),
        Column("deleted_at", "time", False, ("delete_time", "del_time", "删除时间")),
        Column("deleted_by", "deleted_by", False, ("del_type", "change_type", "删除方")),
    ),
    "members": (
        Column("customer_id", "id", True, _CUSTOMER),
        Column("joined_at", "time", True, ("join_time", "register_time", "registered_at",
                                           "入会时间", "注册时间")),
        Column("tier", "category", False, ("level", "grade", "等级", "会员等级")),
    ),
    "referrals": (
        Column("referrer_id", "id", True, ("inviter_id", "inviter", "邀请人id")),
        Column("referred_id", "id", True, ("invitee_id", "invitee", "被邀请人id")),
        Column("at", "time", True, ("referred_at", "invited_at", "time", "date", "邀请时间")),
    ),
    "touches": (
        Column("customer_id", "id", False, _CUSTOMER),
        Column("at", "time", True, ("sent_at", "time", "date", "week", "发送时间")),
        Column("kind", "touch_kind", True, ("type", "touch_type", "类型")),
        Column("count", "count", False, ("n", "sends", "次数")),
    ),
    "spend": (
        Column("month", "month", True, ("period", "月份")),
        Column("channel", "category", True, ("channel_code", "渠道")),
        Column("spend_cny", "spend", True, ("spend", "cost", "cost_cny", "花费", "费用")),
        Column("contacts", "count", False, ("reached", "contacts_reached", "触达人数")),
    ),
    "tests": (
        Column("test_id", "category", True, ("test", "experiment", "experiment_id", "实验",
                                             "实验id")),
        Column("arm", "category", True, ("variant", "arm_id", "cell", "组别", "实验组")),
        Column("lever", "category", True, ("factor", "变量")),
        Column("kind", "category", True, ("lever_kind", "channel", "类型")),
        Column("level", "money", True, ("value", "dose", "水平")),
        Column("start", "time", True, ("start_date", "started_at", "开始日期")),
        Column("end", "time", True, ("end_date", "ended_at", "结束日期")),
        Column("people", "count", False, ("n", "size", "users", "人数")),
        Column("adds", "count", False, ("new_adds", "加粉数")),
        Column("orders", "count", False, ("order_count", "订单数")),
        Column("deletions", "count", False, ("deletes", "删除数")),
        Column("joins", "count", False, ("new_members", "入会数")),
        Column("stage", "category", False, ("segment", "阶段")),
        Column("control", "flag", False, ("is_control", "对照组")),
        Column("settled", "flag", False, ("warm", "existing_users", "老用户")),
    ),
}
"""Every table of a bundle and its columns; ``orders`` is the only required table."""

REQUIRED_TABLES = ("orders",)


def columns_of(table: str) -> dict[str, Column]:
    """The contract's columns of ``table`` by name."""
    return {c.name: c for c in TABLES[table]}


def read_mapping(folder: Path, given: dict | None) -> dict[str, dict[str, str]]:
    """The explicit column mapping per table: ``given`` over ``columns.yaml`` in ``folder``.

    Both have the shape ``{table: {their_name: our_name}}``; a key that is not a table
    name maps a column in every table (``{external_userid: customer_id}``).

    Raises
    ------
    InputError
        When ``columns.yaml`` is not YAML of that shape, or names a column we do not have.
    """
    merged: dict[str, dict[str, str]] = {t: {} for t in TABLES}
    path = folder / "columns.yaml"
    sources = []
    if path.exists():
        try:
            sources.append((path.name, yaml.safe_load(read_text(path)) or {}))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise InputError([Problem(path.name, (), f"not valid YAML{where}")]) from None
    if given:
        sources.append(("columns argument", given))
    for source, raw in sources:
        _merge(merged, raw, source)
    return merged


def _merge(merged: dict[str, dict[str, str]], raw: object, source: str) -> None:
    if not isinstance(raw, dict):
        raise InputError([Problem(source, (), "expected a mapping {their_name: our_name} "
                                  "or {table: {their_name: our_name}}")])
    problems = []
    for key, value in raw.items():
        key = str(key).strip()
        if key in TABLES and isinstance(value, dict):
            for theirs, ours in value.items():
                problems += _add(merged, [key], str(theirs), str(ours), source)
        elif isinstance(value, str):
            tables = [t for t in TABLES if value.strip() in columns_of(t)]
            problems += _add(merged, tables or ["orders"], key, value, source)
        else:
            problems.append(Problem(source, (key,), f"expected a column name, got {value!r}"))
    if problems:
        raise InputError(problems)


def _add(merged, tables, theirs, ours, source) -> list[Problem]:
    ours = ours.strip()
    problems = []
    for table in tables:
        known = columns_of(table)
        if ours not in known:
            close = difflib.get_close_matches(ours, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; {table} has {list(known)}"
            problems.append(Problem(source, (table, theirs), f"unknown column {ours!r}{hint}"))
        else:
            merged[table][theirs.strip().lower()] = ours
    return problems


def resolve(found: list[str], table: str, explicit: dict[str, str],
            source: str) -> dict[str, str]:
    """Map the file's header ``found`` to our names: ``{their_name: our_name}``.

    Raises
    ------
    InputError
        When a required column is missing (listing the columns found) or two of the
        file's columns map to the same one of ours.
    """
    lowered = {name.strip().lower(): name for name in found}
    chosen: dict[str, str] = {}
    for theirs, ours in explicit.items():
        if theirs in lowered:
            chosen.setdefault(ours, lowered[theirs])
    for column in TABLES[table]:
        if column.name in chosen:
            continue
        if column.name in lowered:
            chosen[column.name] = lowered[column.name]
            continue
        hits = [lowered[s] for s in column.synonyms if s in lowered
                and lowered[s] not in chosen.values()]
        if hits:
            chosen[column.name] = hits[0]
    problems = []
    for column in TABLES[table]:
        if column.required and column.name not in chosen:
            also = f" (or {', '.join(column.synonyms[:4])})" if column.synonyms else ""
            problems.append(Problem(source, ("columns",), (
                f"missing required column {column.name!r}{also}; found "
                f"{', '.join(map(repr, found)) or 'no columns'}; map yours in "
                f"columns.yaml, e.g. '{table}: {{your_name: {column.name}}}'")))
    if problems:
        raise InputError(problems)
    return {theirs: ours for ours, theirs in chosen.items()}
